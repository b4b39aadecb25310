package policy

// userCriterion matches the user id (the IdP's subject) with a string
// matcher.
type userCriterion struct{}

func (userCriterion) name() string       { return "user" }
func (userCriterion) takes() valueKind   { return stringValue{} }
func (userCriterion) needs() subjectData { return needsUser }
func (userCriterion) compile(c *Criterion) check {
	m := compileStringMatcher(c.String)
	return check{
		test: func(in *Input) bool { return m(in.Session.UserID) },
		ok:   ReasonUserOK, fail: ReasonUserUnauthorized,
	}
}
