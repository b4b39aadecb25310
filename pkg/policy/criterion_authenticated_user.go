package policy

// authenticatedUserCriterion is `authenticated_user: true`: the request
// carries a session with a user.
type authenticatedUserCriterion struct{}

func (authenticatedUserCriterion) name() string       { return "authenticated_user" }
func (authenticatedUserCriterion) takes() valueKind   { return flagValue{} }
func (authenticatedUserCriterion) needs() subjectData { return needsUser }
func (authenticatedUserCriterion) compile(*Criterion) check {
	return check{
		test: func(in *Input) bool { return in.Session.UserID != "" },
		ok:   ReasonUserOK, fail: ReasonUserUnauthorized,
	}
}
