package policy

// httpPathCriterion matches the request path with a string matcher.
type httpPathCriterion struct{}

func (httpPathCriterion) name() string       { return "http_path" }
func (httpPathCriterion) takes() valueKind   { return stringValue{} }
func (httpPathCriterion) needs() subjectData { return needsRequest }
func (httpPathCriterion) compile(c *Criterion) check {
	m := compileStringMatcher(c.String)
	return check{
		test: func(in *Input) bool { return m(in.Path) },
		ok:   ReasonHTTPPathOK, fail: ReasonHTTPPathUnauthorized,
	}
}
