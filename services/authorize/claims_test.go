package authorize

import (
	"context"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/policy"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
)

func TestBuildIdentityFlattensClaims(t *testing.T) {
	list := func(vals ...any) *structpb.ListValue {
		l, err := structpb.NewList(vals)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	u := &userv1.User{Id: "u1", Claims: map[string]*structpb.ListValue{
		"email":      list("user@example.com"),
		"department": list("eng"),
		"level":      list(3.0),
	}}
	s := &sessionv1.Session{Id: "s1", UserId: "u1", Claims: map[string]*structpb.ListValue{
		"groups":     list("a", []any{"b", "c"}),
		"department": list("research"), // the session's win
		"verified":   list(true),
		"address":    list(map[string]any{"city": "Paris", "zip": "75001"}),
		"nothing":    list(nil),
	}}
	id := buildIdentity(s, u)
	want := map[string][]policy.ClaimValue{ // typed as JSON, as policy's claim/<name> compares them
		"email":      policy.StringClaims("user@example.com"),
		"department": policy.StringClaims("research"),
		"level":      {{Type: policy.JSONNumber, Text: "3"}},
		"groups":     policy.StringClaims("a", "b", "c"),
		"verified":   {{Type: policy.JSONBool, Text: "true"}},
		"address":    {{Type: policy.JSONObject, Text: `{"city":"Paris","zip":"75001"}`}},
		"nothing":    {},
	}
	if !reflect.DeepEqual(id.subject.Claims, want) {
		t.Errorf("claims\n got %v\nwant %v", id.subject.Claims, want)
	}
	if id.subject.Email != "user@example.com" || !reflect.DeepEqual(id.subject.Groups, []string{"a", "b", "c"}) {
		t.Errorf("subject %+v", id.subject)
	}
	if !id.expiresAt.IsZero() || id.expired(time.Now()) {
		t.Error("a session without expires_at expired")
	}
	// No user record and no groups: groups is [] and email comes from nowhere.
	id = buildIdentity(&sessionv1.Session{Id: "s2", UserId: "u2"}, nil)
	if id.subject.Groups == nil || len(id.subject.Groups) != 0 || id.subject.Email != "" {
		t.Errorf("subject %+v", id.subject)
	}
}

// TestClaimPolicyComparesJSONTypes: claim/<name> sees the ID token's
// claims with their JSON types, as Pomerium does: a YAML true matches the
// boolean true only, 30 the number only, a quoted value the string only.
func TestClaimPolicyComparesJSONTypes(t *testing.T) {
	list := func(vals ...any) *structpb.ListValue {
		l, err := structpb.NewList(vals)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	id := buildIdentity(&sessionv1.Session{Id: "s1", UserId: "u1", Claims: map[string]*structpb.ListValue{
		"email_verified": list(true),
		"flag":           list("true"), // a string, not a boolean
		"age":            list(30.0),
		"age_text":       list("30"),
	}}, nil)
	for _, tc := range []struct {
		rule  string
		allow bool
	}{
		{"claim/email_verified: true", true},
		{"claim/email_verified: 'true'", false},
		{"claim/flag: true", false},
		{"claim/flag: 'true'", true},
		{"claim/age: 30", true},
		{"claim/age: '30'", false},
		{"claim/age_text: 30", false},
		{"claim/age_text: '30'", true},
	} {
		p, err := policy.ParseYAML([]byte("allow: {and: [{" + tc.rule + "}]}"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := policy.Compile(policy.Shorthands{}, p)
		if err != nil {
			t.Fatal(err)
		}
		if d := e.Evaluate(&policy.Input{Session: &id.subject}); d.Allow != tc.allow {
			t.Errorf("%s: allow %v, want %v (%v)", tc.rule, d.Allow, tc.allow, d.Reasons)
		}
	}
}

func TestClaimHeadersMapFormAndExtraClaims(t *testing.T) {
	yaml := `
services: authorize
shared_secret: ` + testSecret + `
authenticate_service_url: https://authenticate.localhost.pomerium.io
databroker_service_url: http://127.0.0.1:5443
pass_identity_headers: true
jwt_claims_headers:
  X-Email: email
  X-Dept: department
  X-Missing: nothing
routes:
  - from: https://app.localhost.pomerium.io
    to: http://app:80
    policy:
      allow:
        and:
          - claim/department: research
`
	s := newTestService(t, testConfig(t, yaml))
	s.store.putUser(&userv1.User{Id: "u1", Email: "u@example.com"}, 2)
	s.store.putSession(&sessionv1.Session{Id: "s1", UserId: "u1", Claims: map[string]*structpb.ListValue{
		"department": listOf("research"),
	}}, 3)
	s.store.putSession(&sessionv1.Session{Id: "s2", UserId: "u1", Claims: map[string]*structpb.ListValue{
		"department": listOf("sales", "ops"),
	}}, 4)
	tok := handleFor(t, s, "u1", "s1", 1, 3)
	resp, err := s.Check(context.Background(), newReq("GET", "https://app.localhost.pomerium.io/", cookie(tok)))
	if err != nil || !extauthz.Allowed(resp) {
		t.Fatalf("Check: %v %v", resp, err)
	}
	h := okHeaders(resp)
	if h["x-email"] != "u@example.com" || h["x-dept"] != "research" {
		t.Errorf("headers %v", h)
	}
	if _, ok := h["x-missing"]; ok {
		t.Error("header for a missing claim")
	}
	claims := verifyJWT(t, s.state.Load().keys.JWKS(), h["x-pomerium-jwt-assertion"])
	if claims["department"] != "research" {
		t.Errorf("department claim %v", claims["department"])
	}
	if _, ok := claims["nothing"]; ok {
		t.Error("missing claim in the JWT")
	}

	// claim/department denies sales; the 403 still names no claim values.
	tok2 := handleFor(t, s, "u1", "s2", 1, 4)
	resp, _ = s.Check(context.Background(), newReq("GET", "https://app.localhost.pomerium.io/", cookie(tok2)))
	if extauthz.DeniedStatus(resp) != 403 {
		t.Errorf("status %d", extauthz.DeniedStatus(resp))
	}
}

// A claim header whose claim the user lacks (or has empty) is named in
// headers_to_remove, so that an Envoy in front of authorize drops what
// the client sent under that name.
func TestEmptyClaimHeadersAreRemoved(t *testing.T) {
	yaml := `
services: authorize
shared_secret: ` + testSecret + `
authenticate_service_url: https://authenticate.localhost.pomerium.io
databroker_service_url: http://127.0.0.1:5443
pass_identity_headers: true
jwt_claims_headers: {X-Role: role, X-Groups: groups, X-Email: email, X-Dept: department}
routes:
  - from: https://app.localhost.pomerium.io
    to: http://app:80
    allow_any_authenticated_user: true
`
	s := newTestService(t, testConfig(t, yaml))
	s.store.putUser(&userv1.User{Id: "u1", Email: "u@example.com"}, 2)
	s.store.putSession(&sessionv1.Session{Id: "s1", UserId: "u1", Claims: map[string]*structpb.ListValue{
		"department": listOf("research"),
	}}, 3)
	tok := handleFor(t, s, "u1", "s1", 1, 3)
	for name, opt := range map[string]reqOpt{
		"cookie":        cookie(tok),
		"authorization": header("authorization", "Bearer Pomerium-"+tok),
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := s.Check(context.Background(), newReq("GET", "https://app.localhost.pomerium.io/", opt))
			if err != nil || !extauthz.Allowed(resp) {
				t.Fatalf("Check: %v %v", resp, err)
			}
			h := okHeaders(resp)
			if h["x-email"] != "u@example.com" || h["x-dept"] != "research" {
				t.Errorf("headers %v", h)
			}
			remove := map[string]bool{}
			for _, k := range resp.GetOkResponse().GetHeadersToRemove() {
				remove[k] = true
			}
			for _, k := range []string{"x-role", "x-groups"} {
				if _, set := h[k]; set || !remove[k] {
					t.Errorf("%s: set %v, in headers_to_remove %v (%v)", k, set, remove[k], remove)
				}
			}
			for _, k := range []string{"x-email", "x-dept", "x-pomerium-jwt-assertion"} {
				if remove[k] {
					t.Errorf("headers_to_remove names %s, which is set", k)
				}
			}
			if name == "authorization" && !remove["authorization"] {
				t.Errorf("headers_to_remove %v lacks authorization", remove)
			}
		})
	}
}

// The list form of jwt_claims_headers names the header
// x-pomerium-claim-<claim> with the claim verbatim, as Pomerium does:
// email_verified is X-Pomerium-Claim-Email_verified on the wire, not
// X-Pomerium-Claim-Email-Verified.
func TestClaimHeadersListFormKeepsClaimName(t *testing.T) {
	yaml := `
services: authorize
shared_secret: ` + testSecret + `
authenticate_service_url: https://authenticate.localhost.pomerium.io
databroker_service_url: http://127.0.0.1:5443
pass_identity_headers: true
jwt_claims_headers: email,email_verified
routes:
  - from: https://app.localhost.pomerium.io
    to: http://app:80
    allow_any_authenticated_user: true
`
	s := newTestService(t, testConfig(t, yaml))
	s.store.putUser(&userv1.User{Id: "u1", Email: "u@example.com"}, 2)
	s.store.putSession(&sessionv1.Session{Id: "s1", UserId: "u1", Claims: map[string]*structpb.ListValue{
		"email_verified": listOf("true"),
	}}, 3)
	tok := handleFor(t, s, "u1", "s1", 1, 3)
	resp, err := s.Check(context.Background(), newReq("GET", "https://app.localhost.pomerium.io/", cookie(tok)))
	if err != nil || !extauthz.Allowed(resp) {
		t.Fatalf("Check: %v %v", resp, err)
	}
	h := okHeaders(resp)
	if h["x-pomerium-claim-email_verified"] != "true" || h["x-pomerium-claim-email"] != "u@example.com" {
		t.Errorf("headers %v", h)
	}
	if _, ok := h["x-pomerium-claim-email-verified"]; ok {
		t.Error("the claim's underscore was rewritten")
	}
}
