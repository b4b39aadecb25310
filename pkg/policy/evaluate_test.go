package policy

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// testNow is a Wednesday, 14:30 UTC.
var testNow = time.Date(2024, 6, 5, 14, 30, 0, 0, time.UTC)

var (
	alice = &Subject{
		SessionID: "s-alice", UserID: "u-alice", Email: "alice@example.com", Name: "Alice",
		Groups: []string{"admin", "dev"},
		Claims: map[string][]ClaimValue{ // typed as the ID token's JSON
			"family_name": StringClaims("Smith"),
			"groups":      StringClaims("admin", "dev"),
			"department":  StringClaims("eng"),
			"age":         {NumberClaim(30)},
			"verified":    {{Type: JSONBool, Text: "true"}},
		},
	}
	bob = &Subject{
		SessionID: "s-bob", UserID: "u-bob", Email: "bob@other.org", Name: "Bob",
		Groups: []string{"dev"},
		Claims: map[string][]ClaimValue{"family_name": StringClaims("Jones"), "groups": StringClaims("dev")},
	}
	carol = &Subject{ // signed in, no email, no groups
		SessionID: "s-carol", UserID: "u-carol",
	}
	anonymous = &Subject{SessionID: "s-anon"}                                                                                                               // a session without a user id
	stringly  = &Subject{SessionID: "s-str", UserID: "u-str", Claims: map[string][]ClaimValue{"verified": StringClaims("true"), "age": StringClaims("30")}} // an IdP that sends strings
	mixedCase = &Subject{SessionID: "s-mixed", UserID: "u-mixed", Email: "Alice@Example.com"}                                                               // an IdP that keeps the case of addresses
)

type req struct {
	method, path string
	ip           string
	headers      http.Header
	session      *Subject
	now          time.Time
}

func (r req) input() *Input {
	in := &Input{Method: r.method, Path: r.path, Host: "grafana.example.com", Headers: r.headers, Session: r.session, Now: r.now}
	if in.Method == "" {
		in.Method = "GET"
	}
	if in.Path == "" {
		in.Path = "/"
	}
	if r.ip != "" {
		in.SourceIP = netip.MustParseAddr(r.ip)
	} else {
		in.SourceIP = netip.MustParseAddr("192.0.2.10")
	}
	if in.Now.IsZero() {
		in.Now = testNow
	}
	return in
}

type evalCase struct {
	name    string
	policy  string // PPL YAML; "" for none
	sh      Shorthands
	req     req
	allow   bool
	signIn  bool
	reasons string // Decision.Reasons.String(); "-" to skip the check
}

func runEvalCases(t *testing.T, cases []evalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var pols []*Policy
			if tc.policy != "" {
				p, err := ParseYAML([]byte(tc.policy))
				if err != nil {
					t.Fatalf("ParseYAML: %v", err)
				}
				pols = append(pols, p)
			}
			e, err := Compile(tc.sh, pols...)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			d := e.Evaluate(tc.req.input())
			if d.Allow != tc.allow || d.NeedsSignIn != tc.signIn {
				t.Errorf("Allow=%v NeedsSignIn=%v, want Allow=%v NeedsSignIn=%v (reasons %q, allow %+v, deny %+v)",
					d.Allow, d.NeedsSignIn, tc.allow, tc.signIn, d.Reasons, d.AllowResult, d.DenyResult)
			}
			if tc.reasons != "-" && d.Reasons.String() != tc.reasons {
				t.Errorf("reasons %q, want %q", d.Reasons, tc.reasons)
			}
		})
	}
}

func TestCriteria(t *testing.T) {
	cors := http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"}}
	runEvalCases(t, []evalCase{
		// accept / reject
		{name: "accept anonymous", policy: "allow: {or: [{accept: true}]}", req: req{}, allow: true, reasons: "accept"},
		{name: "accept signed in", policy: "allow: {or: [{accept: 1}]}", req: req{session: bob}, allow: true, reasons: "accept"},
		{name: "reject", policy: "allow: {or: [{reject: true}]}", req: req{session: alice}, reasons: "reject"},
		{name: "accept false accepts (Pomerium ignores the value)", policy: "allow: {or: [{accept: false}]}", req: req{}, allow: true, reasons: "accept"},
		{name: "reject false rejects (Pomerium ignores the value)", policy: "allow: {or: [{reject: false}]}", req: req{session: alice}, reasons: "reject"},
		{name: "authenticated_user false still needs a user (Pomerium)", policy: "allow: {or: [{authenticated_user: false}]}", req: req{}, signIn: true, reasons: "user-unauthenticated"},
		{name: "reject anonymous is 403 not sign-in", policy: "allow: {or: [{reject: true}]}", req: req{}, reasons: "reject"},

		// authenticated_user
		{name: "authenticated_user signed in", policy: "allow: {and: [{authenticated_user: true}]}", req: req{session: alice}, allow: true, reasons: "user-ok"},
		{name: "authenticated_user anonymous", policy: "allow: {and: [{authenticated_user: true}]}", req: req{}, signIn: true, reasons: "user-unauthenticated"},
		{name: "authenticated_user session without user id", policy: "allow: {and: [{authenticated_user: true}]}", req: req{session: anonymous}, reasons: "user-unauthorized"},

		// cors_preflight
		{name: "cors preflight", policy: "allow: {or: [{cors_preflight: true}]}", req: req{method: "OPTIONS", headers: cors}, allow: true, reasons: "cors-request"},
		{name: "cors preflight without origin", policy: "allow: {or: [{cors_preflight: true}]}", req: req{method: "OPTIONS", headers: http.Header{"Access-Control-Request-Method": {"POST"}}}, reasons: "non-cors-request"},
		{name: "cors preflight without request method", policy: "allow: {or: [{cors_preflight: true}]}", req: req{method: "OPTIONS", headers: http.Header{"Origin": {"x"}}}, reasons: "non-cors-request"},
		{name: "cors preflight GET", policy: "allow: {or: [{cors_preflight: true}]}", req: req{method: "GET", headers: cors}, reasons: "non-cors-request"},
		{name: "cors preflight nil headers", policy: "allow: {or: [{cors_preflight: true}]}", req: req{method: "OPTIONS"}, reasons: "non-cors-request"},

		// pomerium_routes
		{name: "pomerium_routes on /.pomerium/", policy: "allow: {or: [{pomerium_routes: true}]}", req: req{path: "/.pomerium/jwt"}, allow: true, reasons: "pomerium-route"},
		{name: "pomerium_routes elsewhere", policy: "allow: {or: [{pomerium_routes: true}]}", req: req{path: "/api"}, reasons: "non-pomerium-route"},

		// domain
		{name: "domain is", policy: "allow: {or: [{domain: {is: example.com}}]}", req: req{session: alice}, allow: true, reasons: "domain-ok"},
		{name: "domain is case-sensitive (Pomerium)", policy: "allow: {or: [{domain: {is: EXAMPLE.com}}]}", req: req{session: alice}, reasons: "domain-unauthorized"},
		{name: "domain of a mixed-case email is case-sensitive (Pomerium)", policy: "allow: {or: [{domain: {is: example.com}}]}", req: req{session: mixedCase}, reasons: "domain-unauthorized"},
		{name: "domain bare string", policy: "allow: {or: [{domain: example.com}]}", req: req{session: alice}, allow: true, reasons: "domain-ok"},
		{name: "domain other", policy: "allow: {or: [{domain: {is: example.com}}]}", req: req{session: bob}, reasons: "domain-unauthorized"},
		{name: "domain anonymous", policy: "allow: {or: [{domain: {is: example.com}}]}", req: req{}, signIn: true, reasons: "user-unauthenticated"},
		{name: "domain no email", policy: "allow: {or: [{domain: {is: example.com}}]}", req: req{session: carol}, reasons: "domain-unauthorized"},
		{name: "domain not an email", policy: "allow: {or: [{domain: {not: example.com}}]}", req: req{session: carol}, reasons: "domain-unauthorized"},
		{name: "domain subdomain is not domain", policy: "allow: {or: [{domain: {is: ample.com}}]}", req: req{session: alice}, reasons: "domain-unauthorized"},
		{name: "domain ends_with", policy: "allow: {or: [{domain: {ends_with: .org}}]}", req: req{session: bob}, allow: true, reasons: "domain-ok"},
		{name: "domain in", policy: "allow: {or: [{domain: {in: [other.org, example.com]}}]}", req: req{session: alice}, allow: true, reasons: "domain-ok"},
		{name: "domain not_in", policy: "allow: {or: [{domain: {not_in: [other.org]}}]}", req: req{session: bob}, reasons: "domain-unauthorized"},

		// email
		{name: "email is", policy: "allow: {or: [{email: {is: alice@example.com}}]}", req: req{session: alice}, allow: true, reasons: "email-ok"},
		{name: "email is case-sensitive (Pomerium)", policy: "allow: {or: [{email: {is: ALICE@EXAMPLE.COM}}]}", req: req{session: alice}, reasons: "email-unauthorized"},
		{name: "email is case-sensitive on the user's side (Pomerium)", policy: "allow: {or: [{email: {is: Alice@Example.com}}]}", req: req{session: mixedCase}, allow: true, reasons: "email-ok"},
		{name: "email mixed case does not admit lower case (Pomerium)", policy: "allow: {or: [{email: {is: alice@example.com}}]}", req: req{session: mixedCase}, reasons: "email-unauthorized"},
		{name: "email is other", policy: "allow: {or: [{email: {is: alice@example.com}}]}", req: req{session: bob}, reasons: "email-unauthorized"},
		{name: "email bare", policy: "allow: {or: [{email: bob@other.org}]}", req: req{session: bob}, allow: true, reasons: "email-ok"},
		{name: "email not", policy: "allow: {or: [{email: {not: bob@other.org}}]}", req: req{session: alice}, allow: true, reasons: "email-ok"},
		{name: "email not self", policy: "allow: {or: [{email: {not: bob@other.org}}]}", req: req{session: bob}, reasons: "email-unauthorized"},
		{name: "email not is case-sensitive (Pomerium)", policy: "allow: {or: [{email: {not: BOB@other.org}}]}", req: req{session: bob}, allow: true, reasons: "email-ok"},
		{name: "email starts_with", policy: "allow: {or: [{email: {starts_with: 'alice@'}}]}", req: req{session: alice}, allow: true, reasons: "email-ok"},
		{name: "email starts_with miss", policy: "allow: {or: [{email: {starts_with: 'admin@'}}]}", req: req{session: alice}, reasons: "email-unauthorized"},
		{name: "email ends_with", policy: "allow: {or: [{email: {ends_with: '@example.com'}}]}", req: req{session: alice}, allow: true, reasons: "email-ok"},
		{name: "email ends_with longer than value", policy: "allow: {or: [{email: {ends_with: 'xxxxxxxxxxxxxxxxxxxxxxx@example.com'}}]}", req: req{session: alice}, reasons: "email-unauthorized"},
		{name: "email contains", policy: "allow: {or: [{email: {contains: 'ce@ex'}}]}", req: req{session: alice}, allow: true, reasons: "email-ok"},
		{name: "email contains is case-sensitive (Pomerium)", policy: "allow: {or: [{email: {contains: 'CE@EX'}}]}", req: req{session: alice}, reasons: "email-unauthorized"},
		{name: "email starts_with is case-sensitive (Pomerium)", policy: "allow: {or: [{email: {starts_with: 'Alice@'}}]}", req: req{session: alice}, reasons: "email-unauthorized"},
		{name: "email contains miss", policy: "allow: {or: [{email: {contains: bob}}]}", req: req{session: alice}, reasons: "email-unauthorized"},
		{name: "email in", policy: "allow: {or: [{email: {in: [x@y.z, alice@example.com]}}]}", req: req{session: alice}, allow: true, reasons: "email-ok"},
		{name: "email in long list (hashed)", policy: "allow: {or: [{email: {in: [a@x, b@x, c@x, d@x, e@x, f@x, g@x, h@x, i@x, alice@example.com]}}]}", req: req{session: alice}, allow: true, reasons: "email-ok"},
		{name: "email in long list is case-sensitive (Pomerium)", policy: "allow: {or: [{email: {in: [a@x, b@x, c@x, d@x, e@x, f@x, g@x, h@x, i@x, Alice@example.COM]}}]}", req: req{session: alice}, reasons: "email-unauthorized"},
		{name: "email in short list is case-sensitive (Pomerium)", policy: "allow: {or: [{email: {in: [x@y.z, ALICE@example.com]}}]}", req: req{session: alice}, reasons: "email-unauthorized"},
		{name: "email in long list miss", policy: "allow: {or: [{email: {in: [a@x, b@x, c@x, d@x, e@x, f@x, g@x, h@x, i@x, j@x]}}]}", req: req{session: alice}, reasons: "email-unauthorized"},
		{name: "email any of several with in", policy: "allow: {or: [{email: {in: [x@y.z, bob@other.org]}}]}", req: req{session: bob}, allow: true, reasons: "email-ok"},
		{name: "email not_in", policy: "allow: {or: [{email: {not_in: [x@y.z]}}]}", req: req{session: bob}, allow: true, reasons: "email-ok"},
		{name: "email not_in hit", policy: "allow: {or: [{email: {not_in: [bob@other.org]}}]}", req: req{session: bob}, reasons: "email-unauthorized"},
		{name: "email several matchers all hold", policy: "allow: {or: [{email: {starts_with: alice, ends_with: example.com}}]}", req: req{session: alice}, allow: true, reasons: "email-ok"},
		{name: "email several matchers one fails", policy: "allow: {or: [{email: {starts_with: alice, ends_with: other.org}}]}", req: req{session: alice}, reasons: "email-unauthorized"},
		{name: "email anonymous", policy: "allow: {or: [{email: {is: alice@example.com}}]}", req: req{}, signIn: true, reasons: "user-unauthenticated"},
		{name: "email empty session email", policy: "allow: {or: [{email: {is: alice@example.com}}]}", req: req{session: carol}, reasons: "email-unauthorized"},

		// user
		{name: "user is id", policy: "allow: {or: [{user: {is: u-alice}}]}", req: req{session: alice}, allow: true, reasons: "user-ok"},
		{name: "user bare", policy: "allow: {or: [{user: u-bob}]}", req: req{session: bob}, allow: true, reasons: "user-ok"},
		{name: "user is case-sensitive", policy: "allow: {or: [{user: U-ALICE}]}", req: req{session: alice}, reasons: "user-unauthorized"},
		{name: "user does not match email", policy: "allow: {or: [{user: {is: alice@example.com}}]}", req: req{session: alice}, reasons: "user-unauthorized"},
		{name: "user starts_with", policy: "allow: {or: [{user: {starts_with: u-}}]}", req: req{session: carol}, allow: true, reasons: "user-ok"},
		{name: "user anonymous", policy: "allow: {or: [{user: u-alice}]}", req: req{}, signIn: true, reasons: "user-unauthenticated"},

		// groups
		{name: "groups has", policy: "allow: {or: [{groups: {has: admin}}]}", req: req{session: alice}, allow: true, reasons: "groups-ok"},
		{name: "groups has miss", policy: "allow: {or: [{groups: {has: admin}}]}", req: req{session: bob}, reasons: "groups-unauthorized"},
		{name: "groups bare is has", policy: "allow: {or: [{groups: dev}]}", req: req{session: alice}, allow: true, reasons: "groups-ok"},
		{name: "groups any of several with or", policy: "allow: {or: [{groups: ops}, {groups: dev}]}", req: req{session: bob}, allow: true, reasons: "groups-ok"},
		{name: "groups is one group", policy: "allow: {or: [{groups: {is: dev}}]}", req: req{session: bob}, allow: true, reasons: "groups-ok"},
		{name: "groups is fails with more groups", policy: "allow: {or: [{groups: {is: dev}}]}", req: req{session: alice}, reasons: "groups-unauthorized"},
		{name: "groups exclude", policy: "allow: {or: [{groups: {exclude: admin}}]}", req: req{session: bob}, allow: true, reasons: "groups-ok"},
		{name: "groups exclude hit", policy: "allow: {or: [{groups: {exclude: admin}}]}", req: req{session: alice}, reasons: "groups-unauthorized"},
		{name: "groups exclude several with and", policy: "allow: {and: [{groups: {exclude: ops}}, {groups: {exclude: admin}}]}", req: req{session: alice}, reasons: "groups-unauthorized"},
		{name: "groups has and exclude", policy: "allow: {or: [{groups: {has: dev, exclude: admin}}]}", req: req{session: bob}, allow: true, reasons: "groups-ok"},
		{name: "groups case-sensitive", policy: "allow: {or: [{groups: {has: Admin}}]}", req: req{session: alice}, reasons: "groups-unauthorized"},
		{name: "groups none", policy: "allow: {or: [{groups: {has: admin}}]}", req: req{session: carol}, reasons: "groups-unauthorized"},
		{name: "groups exclude with no groups", policy: "allow: {or: [{groups: {exclude: admin}}]}", req: req{session: carol}, allow: true, reasons: "groups-ok"},
		{name: "groups anonymous", policy: "allow: {or: [{groups: {has: admin}}]}", req: req{}, signIn: true, reasons: "user-unauthenticated"},

		// claim
		{name: "claim bare (Pomerium doc example)", policy: "allow: {and: [{claim/family_name: Smith}]}", req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "claim bare miss", policy: "allow: {and: [{claim/family_name: Smith}]}", req: req{session: bob}, reasons: "claim-unauthorized"},
		{name: "claim missing is empty list", policy: "allow: {and: [{claim/family_name: Smith}]}", req: req{session: carol}, reasons: "claim-unauthorized"},
		{name: "claim has", policy: "allow: {and: [{claim/groups: {has: admin}}]}", req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "claim is", policy: "allow: {and: [{claim/department: {is: eng}}]}", req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "claim is with several values", policy: "allow: {and: [{claim/groups: {is: admin}}]}", req: req{session: alice}, reasons: "claim-unauthorized"},
		{name: "claim exclude", policy: "allow: {and: [{claim/groups: {exclude: admin}}]}", req: req{session: bob}, allow: true, reasons: "claim-ok"},
		{name: "claim exclude missing claim", policy: "allow: {and: [{claim/nope: {exclude: x}}]}", req: req{session: bob}, allow: true, reasons: "claim-ok"},
		{name: "claim number value", policy: "allow: {and: [{claim/age: 30}]}", req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "claim bool value", policy: "allow: {and: [{claim/verified: true}]}", req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "claim bool does not match the string true (Pomerium)", policy: "allow: {and: [{claim/verified: true}]}", req: req{session: stringly}, reasons: "claim-unauthorized"},
		{name: "claim quoted true matches the string", policy: "allow: {and: [{claim/verified: 'true'}]}", req: req{session: stringly}, allow: true, reasons: "claim-ok"},
		{name: "claim quoted true does not match the bool (Pomerium)", policy: "allow: {and: [{claim/verified: 'true'}]}", req: req{session: alice}, reasons: "claim-unauthorized"},
		{name: "claim bool False is the bool", policy: "allow: {and: [{claim/verified: {exclude: False}}]}", req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "claim number does not match the string (Pomerium)", policy: "allow: {and: [{claim/age: 30}]}", req: req{session: stringly}, reasons: "claim-unauthorized"},
		{name: "claim quoted number matches the string", policy: "allow: {and: [{claim/age: {is: '30'}}]}", req: req{session: stringly}, allow: true, reasons: "claim-ok"},
		{name: "claim 30.0 is the number 30", policy: "allow: {and: [{claim/age: 30.0}]}", req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "claim hex int is the number", policy: "allow: {and: [{claim/age: 0x1E}]}", req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "claim anonymous", policy: "allow: {and: [{claim/family_name: Smith}]}", req: req{}, signIn: true, reasons: "user-unauthenticated"},
		{name: "claim name with slash", policy: "allow: {and: [{claim/https://example.com/role: admin}]}", req: req{session: &Subject{UserID: "u", Claims: map[string][]ClaimValue{"https://example.com/role": StringClaims("admin")}}}, allow: true, reasons: "claim-ok"},

		// http_method
		{name: "http_method is", policy: "allow: {or: [{http_method: {is: GET}}]}", req: req{method: "GET"}, allow: true, reasons: "http-method-ok"},
		{name: "http_method is other", policy: "allow: {or: [{http_method: {is: GET}}]}", req: req{method: "POST"}, reasons: "http-method-unauthorized"},
		{name: "http_method is case-sensitive (Pomerium)", policy: "allow: {or: [{http_method: get}]}", req: req{method: "GET"}, reasons: "http-method-unauthorized"},
		{name: "http_method in", policy: "allow: {or: [{http_method: {in: [GET, HEAD]}}]}", req: req{method: "HEAD"}, allow: true, reasons: "http-method-ok"},
		{name: "http_method not_in", policy: "allow: {or: [{http_method: {not_in: [POST, PUT, DELETE]}}]}", req: req{method: "DELETE"}, reasons: "http-method-unauthorized"},
		{name: "http_method needs no session", policy: "allow: {or: [{http_method: GET}]}", req: req{}, allow: true, reasons: "http-method-ok"},

		// http_path
		{name: "http_path is", policy: "allow: {or: [{http_path: {is: /api}}]}", req: req{path: "/api"}, allow: true, reasons: "http-path-ok"},
		{name: "http_path is case-sensitive", policy: "allow: {or: [{http_path: {is: /API}}]}", req: req{path: "/api"}, reasons: "http-path-unauthorized"},
		{name: "http_path starts_with", policy: "allow: {or: [{http_path: {starts_with: /public/}}]}", req: req{path: "/public/logo.png"}, allow: true, reasons: "http-path-ok"},
		{name: "http_path starts_with miss", policy: "allow: {or: [{http_path: {starts_with: /public/}}]}", req: req{path: "/private"}, reasons: "http-path-unauthorized"},
		{name: "http_path ends_with", policy: "allow: {or: [{http_path: {ends_with: .png}}]}", req: req{path: "/a/b.png"}, allow: true, reasons: "http-path-ok"},
		{name: "http_path contains", policy: "allow: {or: [{http_path: {contains: /admin/}}]}", req: req{path: "/x/admin/y"}, allow: true, reasons: "http-path-ok"},
		{name: "http_path not", policy: "allow: {or: [{http_path: {not: /admin}}]}", req: req{path: "/admin"}, reasons: "http-path-unauthorized"},

		// source_ip
		{name: "source_ip cidr", policy: "allow: {or: [{source_ip: 10.0.0.0/8}]}", req: req{ip: "10.1.2.3"}, allow: true, reasons: "source-ip-ok"},
		{name: "source_ip cidr miss", policy: "allow: {or: [{source_ip: 10.0.0.0/8}]}", req: req{ip: "11.1.2.3"}, reasons: "source-ip-unauthorized"},
		{name: "source_ip single ip", policy: "allow: {or: [{source_ip: 192.0.2.10}]}", req: req{ip: "192.0.2.10"}, allow: true, reasons: "source-ip-ok"},
		{name: "source_ip single ip miss", policy: "allow: {or: [{source_ip: 192.0.2.10}]}", req: req{ip: "192.0.2.11"}, reasons: "source-ip-unauthorized"},
		{name: "source_ip list", policy: "allow: {or: [{source_ip: [10.0.0.0/8, 192.168.0.0/16]}]}", req: req{ip: "192.168.4.4"}, allow: true, reasons: "source-ip-ok"},
		{name: "source_ip ipv6", policy: "allow: {or: [{source_ip: '2001:db8::/32'}]}", req: req{ip: "2001:db8::1"}, allow: true, reasons: "source-ip-ok"},
		{name: "source_ip v4-mapped request", policy: "allow: {or: [{source_ip: 10.0.0.0/8}]}", req: req{ip: "::ffff:10.0.0.1"}, allow: true, reasons: "source-ip-ok"},
		{name: "source_ip v4-mapped policy", policy: "allow: {or: [{source_ip: '::ffff:10.0.0.1'}]}", req: req{ip: "10.0.0.1"}, allow: true, reasons: "source-ip-ok"},
		{name: "source_ip unmasked cidr", policy: "allow: {or: [{source_ip: 10.9.9.9/8}]}", req: req{ip: "10.0.0.1"}, allow: true, reasons: "source-ip-ok"},
		{name: "source_ip v4 range does not match v6", policy: "allow: {or: [{source_ip: 0.0.0.0/0}]}", req: req{ip: "2001:db8::1"}, reasons: "source-ip-unauthorized"},
		{name: "source_ip needs no session", policy: "allow: {or: [{source_ip: 0.0.0.0/0}]}", req: req{}, allow: true, reasons: "source-ip-ok"},

		// date
		{name: "date after", policy: "allow: {and: [{date: {after: 2020-01-02T16:20:00}}]}", req: req{}, allow: true, reasons: "date-ok"},
		{name: "date after future", policy: "allow: {and: [{date: {after: 2030-01-02T16:20:00}}]}", req: req{}, reasons: "date-unauthorized"},
		{name: "date between (Pomerium doc example)", policy: "allow: {and: [{date: {after: 2020-01-02T16:20:00, before: 2150-01-02T16:20:00}}]}", req: req{}, allow: true, reasons: "date-ok"},
		{name: "date before past", policy: "allow: {and: [{date: {before: 2024-06-05}}]}", req: req{}, reasons: "date-unauthorized"},
		{name: "date with zone", policy: "allow: {and: [{date: {before: '2024-06-05T16:29:00+02:00'}}]}", req: req{}, reasons: "date-unauthorized"},
		{name: "date with zone before", policy: "allow: {and: [{date: {before: '2024-06-05T16:31:00+02:00'}}]}", req: req{}, allow: true, reasons: "date-ok"},
		{name: "date after is exclusive", policy: "allow: {and: [{date: {after: 2024-06-05T14:30:00Z}}]}", req: req{}, reasons: "date-unauthorized"},

		// day_of_week (testNow is a Wednesday in UTC)
		{name: "day_of_week range (Pomerium doc example)", policy: "allow: {and: [{day_of_week: tue-fri}]}", req: req{}, allow: true, reasons: "day-of-week-ok"},
		{name: "day_of_week range miss", policy: "allow: {and: [{day_of_week: thu-sat}]}", req: req{}, reasons: "day-of-week-unauthorized"},
		{name: "day_of_week list", policy: "allow: {and: [{day_of_week: 'mon,wed,fri'}]}", req: req{}, allow: true, reasons: "day-of-week-ok"},
		{name: "day_of_week full names", policy: "allow: {and: [{day_of_week: Monday-Wednesday}]}", req: req{}, allow: true, reasons: "day-of-week-ok"},
		{name: "day_of_week star", policy: "allow: {and: [{day_of_week: '*'}]}", req: req{}, allow: true, reasons: "day-of-week-ok"},
		{name: "day_of_week wrapping range", policy: "allow: {and: [{day_of_week: fri-mon}]}", req: req{}, reasons: "day-of-week-unauthorized"},
		{name: "day_of_week wrapping range hit", policy: "allow: {and: [{day_of_week: sat-wed}]}", req: req{}, allow: true, reasons: "day-of-week-ok"},
		{name: "day_of_week yaml list", policy: "allow: {and: [{day_of_week: [mon, wed]}]}", req: req{}, allow: true, reasons: "day-of-week-ok"},
		{name: "day_of_week with timezone", policy: "allow: {and: [{day_of_week: {is: thu, timezone: Pacific/Kiritimati}}]}", req: req{now: time.Date(2024, 6, 5, 23, 0, 0, 0, time.UTC)}, allow: true, reasons: "day-of-week-ok"},

		// time_of_day
		{name: "time_of_day (Pomerium doc example)", policy: "allow: {and: [{time_of_day: {timezone: UTC, after: '2:20:00', before: 4:30PM}}]}", req: req{}, allow: true, reasons: "time-of-day-ok"},
		{name: "time_of_day before miss", policy: "allow: {and: [{time_of_day: {timezone: UTC, before: '14:00'}}]}", req: req{}, reasons: "time-of-day-unauthorized"},
		{name: "time_of_day after only", policy: "allow: {and: [{time_of_day: {timezone: UTC, after: 2PM}}]}", req: req{}, allow: true, reasons: "time-of-day-ok"},
		{name: "time_of_day zone shifts", policy: "allow: {and: [{time_of_day: {timezone: America/Phoenix, after: '7:00', before: '8:00'}}]}", req: req{}, allow: true, reasons: "time-of-day-ok"},
		{name: "time_of_day zone shifts out", policy: "allow: {and: [{time_of_day: {timezone: Asia/Tokyo, after: '9:00', before: '17:00'}}]}", req: req{}, reasons: "time-of-day-unauthorized"},
		{name: "time_of_day wraps midnight", policy: "allow: {and: [{time_of_day: {timezone: UTC, after: '22:00', before: '06:00'}}]}", req: req{now: time.Date(2024, 6, 5, 23, 0, 0, 0, time.UTC)}, allow: true, reasons: "time-of-day-ok"},
		{name: "time_of_day wraps midnight miss", policy: "allow: {and: [{time_of_day: {timezone: UTC, after: '22:00', before: '06:00'}}]}", req: req{}, reasons: "time-of-day-unauthorized"},
		{name: "time_of_day after inclusive", policy: "allow: {and: [{time_of_day: {timezone: UTC, after: '14:30'}}]}", req: req{}, allow: true, reasons: "time-of-day-ok"},
		{name: "time_of_day before exclusive", policy: "allow: {and: [{time_of_day: {timezone: UTC, before: '2:30 pm'}}]}", req: req{}, reasons: "time-of-day-unauthorized"},
		{name: "time_of_day no timezone is UTC", policy: "allow: {and: [{time_of_day: {after: '14:00', before: '15:00'}}]}", req: req{}, allow: true, reasons: "time-of-day-ok"},
		{name: "time_of_day DST summer", policy: "allow: {and: [{time_of_day: {timezone: Europe/Berlin, after: '16:00', before: '17:00'}}]}", req: req{}, allow: true, reasons: "time-of-day-ok"},
		{name: "time_of_day DST winter", policy: "allow: {and: [{time_of_day: {timezone: Europe/Berlin, after: '16:00', before: '17:00'}}]}", req: req{now: time.Date(2024, 1, 10, 14, 30, 0, 0, time.UTC)}, reasons: "time-of-day-unauthorized"},
	})
}

func TestOperators(t *testing.T) {
	const A = "{domain: {is: example.com}}" // alice yes, bob no
	const B = "{groups: {has: admin}}"      // alice yes, bob no
	const C = "{groups: {has: dev}}"        // alice yes, bob yes
	runEvalCases(t, []evalCase{
		// and
		{name: "and both true", policy: "allow: {and: [" + A + ", " + C + "]}", req: req{session: alice}, allow: true, reasons: "domain-ok,groups-ok"},
		{name: "and one false keeps only false reasons", policy: "allow: {and: [" + A + ", " + C + "]}", req: req{session: bob}, reasons: "domain-unauthorized"},
		{name: "and all false", policy: "allow: {and: [" + A + ", " + B + "]}", req: req{session: bob}, reasons: "domain-unauthorized,groups-unauthorized"},
		{name: "and empty contributes nothing", policy: "allow: {and: []}", req: req{session: alice}, reasons: ""},
		// or
		{name: "or one true keeps only true reasons", policy: "allow: {or: [" + A + ", " + C + "]}", req: req{session: bob}, allow: true, reasons: "groups-ok"},
		{name: "or all true", policy: "allow: {or: [" + A + ", " + B + "]}", req: req{session: alice}, allow: true, reasons: "domain-ok,groups-ok"},
		{name: "or all false", policy: "allow: {or: [" + A + ", " + B + "]}", req: req{session: bob}, reasons: "domain-unauthorized,groups-unauthorized"},
		// not: ¬A ∧ ¬B
		{name: "not none true", policy: "allow: {not: [" + A + ", " + B + "]}", req: req{session: bob}, allow: true, reasons: "domain-unauthorized,groups-unauthorized"},
		{name: "not one true", policy: "allow: {not: [" + A + ", " + C + "]}", req: req{session: bob}, reasons: "groups-ok"},
		{name: "not all true", policy: "allow: {not: [" + A + ", " + B + "]}", req: req{session: alice}, reasons: "domain-ok,groups-ok"},
		// nor: ¬A ∨ ¬B
		{name: "nor one false", policy: "allow: {nor: [" + A + ", " + C + "]}", req: req{session: bob}, allow: true, reasons: "domain-unauthorized"},
		{name: "nor all true", policy: "allow: {nor: [" + A + ", " + C + "]}", req: req{session: alice}, reasons: "domain-ok,groups-ok"},
		{name: "nor all false", policy: "allow: {nor: [" + A + ", " + B + "]}", req: req{session: bob}, allow: true, reasons: "domain-unauthorized,groups-unauthorized"},
		// Pomerium doc: operators in one rule are or-ed
		{name: "several operators in one rule (doc example)", policy: "allow: {and: [{claim/family_name: Smith}], or: [{domain: {is: domain1.com}}, {domain: {is: domain2.com}}]}", req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "several operators in one rule none", policy: "allow: {and: [{claim/family_name: Smith}], or: [{domain: {is: domain1.com}}, {domain: {is: domain2.com}}]}", req: req{session: bob}, reasons: "claim-unauthorized,domain-unauthorized"},
		{name: "several allow rules (doc example)", policy: "- allow: {and: [{claim/family_name: Smith}]}\n- allow: {or: [{domain: {is: domain1.com}}, {domain: {is: other.org}}]}", req: req{session: bob}, allow: true, reasons: "domain-ok"},
		// not on http criteria (doc example: deny unless GET)
		{name: "deny not GET blocks POST", policy: "allow: {and: [{claim/family_name: Smith}]}\ndeny: {not: [{http_method: {is: GET}}]}", req: req{session: alice, method: "POST"}, reasons: "http-method-unauthorized"},
		{name: "deny not GET lets GET", policy: "allow: {and: [{claim/family_name: Smith}]}\ndeny: {not: [{http_method: {is: GET}}]}", req: req{session: alice, method: "GET"}, allow: true, reasons: "claim-ok"},
	})
}

func TestDecisions(t *testing.T) {
	const docExample = `
allow:
  and:
    - domain:
        is: example.com
deny:
  or:
    - email:
        is: user2@example.com
    - email:
        is: user3@example.com
`
	user2 := &Subject{UserID: "u2", Email: "user2@example.com"}
	user4 := &Subject{UserID: "u4", Email: "user4@example.com"}
	runEvalCases(t, []evalCase{
		// Pomerium's "At a Glance" example
		{name: "doc example allowed domain", policy: docExample, req: req{session: user4}, allow: true, reasons: "domain-ok"},
		{name: "doc example denied user", policy: docExample, req: req{session: user2}, reasons: "email-ok"},
		{name: "doc example other domain", policy: docExample, req: req{session: bob}, reasons: "domain-unauthorized"},
		{name: "doc example anonymous signs in", policy: docExample, req: req{}, signIn: true, reasons: "user-unauthenticated"},

		// deny wins over allow
		{name: "deny over accept", policy: "allow: {or: [{accept: true}]}\ndeny: {or: [{http_path: {starts_with: /admin}}]}", req: req{path: "/admin/x"}, reasons: "http-path-ok"},
		{name: "deny not matching lets accept", policy: "allow: {or: [{accept: true}]}\ndeny: {or: [{http_path: {starts_with: /admin}}]}", req: req{path: "/x"}, allow: true, reasons: "accept"},
		{name: "deny in a separate rule", policy: "- allow: {or: [{groups: dev}]}\n- deny: {or: [{groups: admin}]}", req: req{session: alice}, reasons: "groups-ok"},
		{name: "deny in separate rule other user", policy: "- allow: {or: [{groups: dev}]}\n- deny: {or: [{groups: admin}]}", req: req{session: bob}, allow: true, reasons: "groups-ok"},
		{name: "reject in deny does nothing", policy: "allow: {or: [{accept: true}]}\ndeny: {or: [{reject: true}]}", req: req{}, allow: true, reasons: "accept"},
		{name: "accept in deny denies all", policy: "allow: {or: [{accept: true}]}\ndeny: {or: [{accept: true}]}", req: req{}, reasons: "accept"},

		// no allow means deny
		{name: "no policy denies", req: req{session: alice}, reasons: ""},
		{name: "deny only denies", policy: "deny: {or: [{reject: true}]}", req: req{session: alice}, reasons: ""},
		{name: "empty allow denies", policy: "allow: {}", req: req{session: alice}, reasons: ""},
		{name: "null allow denies", policy: "allow:", req: req{session: alice}, reasons: ""},
		{name: "empty list policy denies", policy: "[]", req: req{session: alice}, reasons: ""},

		// unauthenticated vs unauthorized
		{name: "anonymous on user criterion signs in", policy: "allow: {or: [{email: a@b.c}]}", req: req{}, signIn: true, reasons: "user-unauthenticated"},
		{name: "signed in but wrong user is 403", policy: "allow: {or: [{email: a@b.c}]}", req: req{session: bob}, reasons: "email-unauthorized"},
		{name: "or with public path: anonymous allowed", policy: "allow: {or: [{http_path: {starts_with: /public}}, {email: a@b.c}]}", req: req{path: "/public/x"}, allow: true, reasons: "http-path-ok"},
		{name: "or with public path: anonymous elsewhere signs in", policy: "allow: {or: [{http_path: {starts_with: /public}}, {email: a@b.c}]}", req: req{path: "/x"}, signIn: true, reasons: "http-path-unauthorized,user-unauthenticated"},
		{name: "and with failing request criterion still carries unauthenticated", policy: "allow: {and: [{http_method: GET}, {email: a@b.c}]}", req: req{method: "POST"}, signIn: true, reasons: "http-method-unauthorized,user-unauthenticated"},
		{name: "not over user criterion: anonymous signs in (Pomerium)", policy: "allow: {not: [{email: a@b.c}]}", req: req{}, signIn: true, reasons: "user-unauthenticated"},
		{name: "deny on user criterion makes public route sign in (Pomerium)", policy: "allow: {or: [{accept: true}]}\ndeny: {or: [{email: bad@b.c}]}", req: req{}, signIn: true, reasons: "user-unauthenticated"},
		{name: "deny on user criterion signed in other user", policy: "allow: {or: [{accept: true}]}\ndeny: {or: [{email: bad@b.c}]}", req: req{session: bob}, allow: true, reasons: "accept"},
		{name: "accept or'ed with user criterion stays public", policy: "allow: {or: [{accept: true}, {email: a@b.c}]}", req: req{}, allow: true, reasons: "accept"},
		{name: "session without user on domain is 403", policy: "allow: {or: [{domain: example.com}]}", req: req{session: anonymous}, reasons: "domain-unauthorized"},
	})
}

func TestShorthands(t *testing.T) {
	cors := http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"}}
	runEvalCases(t, []evalCase{
		{name: "public access", sh: Shorthands{AllowPublicUnauthenticatedAccess: true}, req: req{}, allow: true, reasons: "accept"},
		{name: "any authenticated user", sh: Shorthands{AllowAnyAuthenticatedUser: true}, req: req{session: bob}, allow: true, reasons: "user-ok"},
		{name: "any authenticated user anonymous", sh: Shorthands{AllowAnyAuthenticatedUser: true}, req: req{}, signIn: true, reasons: "user-unauthenticated"},
		{name: "allowed users by email", sh: Shorthands{AllowedUsers: []string{"bob@other.org"}}, req: req{session: bob}, allow: true, reasons: "email-ok"},
		{name: "allowed users by id", sh: Shorthands{AllowedUsers: []string{"u-bob"}}, req: req{session: bob}, allow: true, reasons: "user-ok"},
		{name: "allowed users miss", sh: Shorthands{AllowedUsers: []string{"bob@other.org"}}, req: req{session: alice}, reasons: "email-unauthorized,user-unauthorized"},
		{name: "allowed domains", sh: Shorthands{AllowedDomains: []string{"other.org", "example.com"}}, req: req{session: alice}, allow: true, reasons: "domain-ok"},
		{name: "allowed domains miss", sh: Shorthands{AllowedDomains: []string{"other.org"}}, req: req{session: alice}, reasons: "domain-unauthorized"},
		{name: "allowed idp claims", sh: Shorthands{AllowedIDPClaims: map[string][]any{"family_name": {"Smith"}}}, req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "allowed idp claims number", sh: Shorthands{AllowedIDPClaims: map[string][]any{"age": {30}}}, req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "allowed idp claims float", sh: Shorthands{AllowedIDPClaims: map[string][]any{"age": {30.0}}}, req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "allowed idp claims bool is not the string (Pomerium)", sh: Shorthands{AllowedIDPClaims: map[string][]any{"verified": {true}}}, req: req{session: stringly}, reasons: "claim-unauthorized"},
		{name: "allowed idp claims string true is not the bool (Pomerium)", sh: Shorthands{AllowedIDPClaims: map[string][]any{"verified": {"true"}}}, req: req{session: alice}, reasons: "claim-unauthorized"},
		{name: "allowed idp claims bool", sh: Shorthands{AllowedIDPClaims: map[string][]any{"verified": {true}}}, req: req{session: alice}, allow: true, reasons: "claim-ok"},
		{name: "allowed idp claims miss", sh: Shorthands{AllowedIDPClaims: map[string][]any{"family_name": {"Smith", "Doe"}}}, req: req{session: bob}, reasons: "claim-unauthorized"},
		{name: "cors preflight shorthand", sh: Shorthands{CORSAllowPreflight: true}, req: req{method: "OPTIONS", headers: cors}, allow: true, reasons: "cors-request"},
		{name: "cors preflight shorthand plain GET", sh: Shorthands{CORSAllowPreflight: true}, req: req{}, reasons: "non-cors-request"},
		{name: "cors preflight with users: preflight anonymous passes", sh: Shorthands{CORSAllowPreflight: true, AllowedDomains: []string{"example.com"}}, req: req{method: "OPTIONS", headers: cors}, allow: true, reasons: "cors-request"},
		{name: "shorthand or'ed with policy", sh: Shorthands{AllowedDomains: []string{"other.org"}}, policy: "allow: {or: [{groups: admin}]}", req: req{session: alice}, allow: true, reasons: "groups-ok"},
		{name: "shorthand and policy deny", sh: Shorthands{AllowAnyAuthenticatedUser: true}, policy: "deny: {or: [{groups: admin}]}", req: req{session: alice}, reasons: "groups-ok"},
		{name: "shorthand and policy deny other", sh: Shorthands{AllowAnyAuthenticatedUser: true}, policy: "deny: {or: [{groups: admin}]}", req: req{session: bob}, allow: true, reasons: "user-ok"},
	})
}

func TestCompileSeveralPolicies(t *testing.T) {
	p1, err := ParseYAML([]byte("allow: {or: [{domain: example.com}]}"))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := ParseYAML([]byte("deny: {or: [{groups: admin}]}"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Compile(Shorthands{}, p1, nil, p2)
	if err != nil {
		t.Fatal(err)
	}
	if d := e.Evaluate(req{session: alice}.input()); d.Allow || d.Reasons != ReasonGroupsOK {
		t.Errorf("alice: %+v", d)
	}
	if d := e.Evaluate(req{session: &Subject{UserID: "x", Email: "x@example.com"}}.input()); !d.Allow || d.Reasons != ReasonDomainOK {
		t.Errorf("x: %+v", d)
	}
}

func TestCompileRejectsBadGoAST(t *testing.T) {
	for name, p := range map[string]*Policy{
		"unknown criterion": {Rules: []Rule{{Allow: &Action{Or: []Criterion{{Name: "emial"}}}}}},
		"missing matcher":   {Rules: []Rule{{Allow: &Action{Or: []Criterion{{Name: "email"}}}}}},
		"unknown op":        {Rules: []Rule{{Allow: &Action{Or: []Criterion{{Name: "email", String: &StringMatcher{Ops: []StringOp{{Op: "like"}}}}}}}}},
		"empty in":          {Rules: []Rule{{Allow: &Action{Or: []Criterion{{Name: "email", String: &StringMatcher{Ops: []StringOp{{Op: "in"}}}}}}}}},
		"claim without sub": {Rules: []Rule{{Deny: &Action{And: []Criterion{{Name: "claim", List: &ListMatcher{Ops: []ListOp{{Op: "has", Values: []string{"x"}}}}}}}}}},
		"list is two":       {Rules: []Rule{{Deny: &Action{And: []Criterion{{Name: "groups", List: &ListMatcher{Ops: []ListOp{{Op: "is", Values: []string{"x", "y"}}}}}}}}}},
		"no ips":            {Rules: []Rule{{Deny: &Action{And: []Criterion{{Name: "source_ip"}}}}}},
	} {
		if _, err := Compile(Shorthands{}, p); err == nil {
			t.Errorf("%s: Compile succeeded", name)
		}
	}
}

func TestReasons(t *testing.T) {
	r := ReasonUserUnauthorized | ReasonAccept | ReasonEmailOK
	if got, want := r.String(), "accept,email-ok,user-unauthorized"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if r.Len() != 3 || !r.Has(ReasonAccept|ReasonEmailOK) || r.Has(ReasonReject) {
		t.Errorf("Len/Has wrong for %v", r)
	}
	if Reasons(0).Slice() != nil || Reasons(0).String() != "" {
		t.Error("empty reasons not empty")
	}
	for i, name := range reasonNames {
		got, ok := ReasonByName(name)
		if !ok || got != 1<<i || got.String() != name {
			t.Errorf("ReasonByName(%q) = %v, %v", name, got, ok)
		}
		if i > 0 && reasonNames[i-1] >= name {
			t.Errorf("reason names not sorted at %q", name)
		}
	}
	if _, ok := ReasonByName("nope"); ok {
		t.Error("ReasonByName(nope) found")
	}
	b, _ := (ReasonGroupsOK | ReasonClaimOK).MarshalText()
	if string(b) != "claim-ok,groups-ok" {
		t.Errorf("MarshalText = %s", b)
	}
}

func TestNowDefaultsToClock(t *testing.T) {
	p, err := ParseYAML([]byte("allow: {and: [{date: {after: 2020-01-01}}]}"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Compile(Shorthands{}, p)
	if err != nil {
		t.Fatal(err)
	}
	if d := e.Evaluate(&Input{}); !d.Allow {
		t.Errorf("zero Now: %+v", d)
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	for name, src := range benchPolicies {
		p, err := ParseYAML([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		e, err := Compile(Shorthands{CORSAllowPreflight: true}, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []*Subject{alice, bob, nil} {
			in := benchInput(s)
			if n := testing.AllocsPerRun(100, func() { e.Evaluate(in) }); n != 0 {
				t.Errorf("%s: %v allocs per Evaluate", name, n)
			}
		}
	}
}
