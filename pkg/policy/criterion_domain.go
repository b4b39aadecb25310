package policy

import "strings"

// domainCriterion matches the domain of the user's email (the part after
// the '@') with a string matcher.
type domainCriterion struct{}

func (domainCriterion) name() string       { return "domain" }
func (domainCriterion) takes() valueKind   { return stringValue{} }
func (domainCriterion) needs() subjectData { return needsUser }
func (domainCriterion) compile(c *Criterion) check {
	m := compileStringMatcher(c.String)
	return check{
		test: func(in *Input) bool {
			d, ok := emailDomain(in.Session.Email)
			return ok && m(d)
		},
		ok: ReasonDomainOK, fail: ReasonDomainUnauthorized,
	}
}

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
