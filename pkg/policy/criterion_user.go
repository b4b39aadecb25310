package policy

// userCriterion matches the user id (the IdP's subject) with a string
// matcher.
var userCriterion = stringCriterion{key: "user", data: needsUser, ok: ReasonUserOK, fail: ReasonUserUnauthorized,
	read: func(in *Input) (string, bool) { return in.Session.UserID, true }}
