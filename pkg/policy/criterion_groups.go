package policy

// groupsCriterion matches the user's groups (the IdP's groups claim) with
// a list matcher, comparing text.
type groupsCriterion struct{}

func (groupsCriterion) name() string       { return "groups" }
func (groupsCriterion) takes() valueKind   { return listValue{} }
func (groupsCriterion) needs() subjectData { return needsUser }
func (groupsCriterion) compile(c *Criterion) check {
	m := compileListMatcher(c.List, func(o listOperator, op ListOp) func([]string) bool { return o.strings(op.Values[0]) })
	return check{
		test: func(in *Input) bool { return m(in.Session.Groups) },
		ok:   ReasonGroupsOK, fail: ReasonGroupsUnauthorized,
	}
}
