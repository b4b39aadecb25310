package policy

// emailCriterion matches the user's email with a string matcher.
type emailCriterion struct{}

func (emailCriterion) name() string       { return "email" }
func (emailCriterion) takes() valueKind   { return stringValue{} }
func (emailCriterion) needs() subjectData { return needsUser }
func (emailCriterion) compile(c *Criterion) check {
	m := compileStringMatcher(c.String)
	return check{
		test: func(in *Input) bool { return m(in.Session.Email) },
		ok:   ReasonEmailOK, fail: ReasonEmailUnauthorized,
	}
}
