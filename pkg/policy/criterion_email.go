package policy

// emailCriterion matches the user's email with a string matcher.
var emailCriterion = stringCriterion{key: "email", data: needsUser, ok: ReasonEmailOK, fail: ReasonEmailUnauthorized,
	read: func(in *Input) (string, bool) { return in.Session.Email, true }}
