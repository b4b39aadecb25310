package policy

import "strings"

// domainCriterion matches the domain of the user's email (the part after
// the '@') with a string matcher.
var domainCriterion = stringCriterion{key: "domain", data: needsUser, ok: ReasonDomainOK, fail: ReasonDomainUnauthorized,
	read: func(in *Input) (string, bool) { return emailDomain(in.Session.Email) }}

// emailDomain returns the part of email after the '@' (up to a second '@',
// as Pomerium's split(email, "@")[1]); false when there is no '@'.
func emailDomain(email string) (string, bool) {
	_, d, ok := strings.Cut(email, "@")
	if !ok {
		return "", false
	}
	if i := strings.IndexByte(d, '@'); i >= 0 {
		d = d[:i]
	}
	return d, true
}
