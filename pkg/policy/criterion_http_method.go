package policy

// httpMethodCriterion matches the request method with a string matcher.
type httpMethodCriterion struct{}

func (httpMethodCriterion) name() string       { return "http_method" }
func (httpMethodCriterion) takes() valueKind   { return stringValue{} }
func (httpMethodCriterion) needs() subjectData { return needsRequest }
func (httpMethodCriterion) compile(c *Criterion) check {
	m := compileStringMatcher(c.String)
	return check{
		test: func(in *Input) bool { return m(in.Method) },
		ok:   ReasonHTTPMethodOK, fail: ReasonHTTPMethodUnauthorized,
	}
}
