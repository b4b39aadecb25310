package policy

// authenticatedUserCriterion is `authenticated_user: true`: the request
// carries a session with a user.
var authenticatedUserCriterion = flagCriterion{key: "authenticated_user", data: needsUser, ok: ReasonUserOK, fail: ReasonUserUnauthorized,
	test: func(in *Input) bool { return in.Session.UserID != "" }}
