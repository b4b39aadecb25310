package policy

// claimCriterion is claim/<name>: it matches the values of one claim of
// the session or user with a list matcher, comparing JSON types as well
// as text (claim/verified: true is the boolean); a missing claim is an
// empty list.
type claimCriterion struct{}

func (claimCriterion) name() string       { return "claim" }
func (claimCriterion) subPath() string    { return "a claim name" }
func (claimCriterion) takes() valueKind   { return listValue{} }
func (claimCriterion) needs() subjectData { return needsUser }
func (claimCriterion) compile(c *Criterion) check {
	m := compileListMatcher(c.List, func(o listOperator, op ListOp) func([]ClaimValue) bool {
		return o.claims(ClaimValue{Type: op.Type, Text: op.Values[0]})
	})
	name := c.SubPath
	return check{
		test: func(in *Input) bool { return m(in.Session.Claims[name]) },
		ok:   ReasonClaimOK, fail: ReasonClaimUnauthorized,
	}
}
