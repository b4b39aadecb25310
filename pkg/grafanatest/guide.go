package grafanatest

// The grafana.ini blocks of Pomerium's "Securing Grafana" guide, verbatim,
// for tests that check configurations against the guide's text.
const (
	// GuideBasicINI is the guide's first [auth.jwt] block.
	GuideBasicINI = `[auth.jwt]
enabled = true
header_name = X-Pomerium-Jwt-Assertion
email_claim = email
jwk_set_url = https://auth.localhost.pomerium.io/.well-known/pomerium/jwks.json
cache_ttl = 60m
`
	// GuideScaleINI is the "Manage Access at Scale" block (auto_sign_up).
	GuideScaleINI = `[auth.jwt]
enabled = true
header_name = X-Pomerium-Jwt-Assertion
email_claim = email
jwk_set_url = https://auth.localhost.pomerium.io/.well-known/pomerium/jwks.json
cache_ttl = 60m
username_claim = sub
auto_sign_up = true
[users]
auto_assign_org = true
auto_assign_org_role = Editor
`
	// GuideFileINI is the troubleshooting block (jwk_set_file).
	GuideFileINI = `[auth.jwt]
enabled = true
header_name = X-Pomerium-Jwt-Assertion
email_claim = email
jwk_set_file = /etc/grafana/jwks.json
cache_ttl = 60m
`
)
