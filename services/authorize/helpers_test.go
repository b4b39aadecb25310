package authorize

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
)

// testSecret is a fixed shared_secret (32 bytes, base64).
var testSecret = "93pDpOHbb0pg+nEAHTZS1COZMt/53VNFXDp/hkyGHCg="

// testConfigYAML is the configuration most tests run with: the Grafana
// guide's route plus routes for every response shape.
var testConfigYAML = `
services: authorize
shared_secret: ` + testSecret + `
authenticate_service_url: https://authenticate.localhost.pomerium.io
databroker_service_url: http://127.0.0.1:5443
jwt_claims_headers: email,groups
routes:
  - from: https://grafana.localhost.pomerium.io
    to: http://grafana:3000
    pass_identity_headers: true
    policy:
      - allow:
          or:
            - domain:
                is: example.com
  - id: public
    from: https://public.localhost.pomerium.io
    to: http://public:80
    allow_public_unauthenticated_access: true
    pass_identity_headers: true
  - id: nopass
    from: https://nopass.localhost.pomerium.io
    to: http://nopass:80
    allow_any_authenticated_user: true
    set_request_headers:
      X-Custom: hello
  - id: admin
    from: https://app.localhost.pomerium.io
    to: http://app:80
    prefix: /admin
    pass_identity_headers: true
    policy:
      allow:
        and:
          - groups:
              has: admins
  - id: app
    from: https://app.localhost.pomerium.io
    to: http://app:80
    pass_identity_headers: true
    set_request_headers:
      X-App: yes
    allow_any_authenticated_user: true
  - id: wild
    from: https://*.wild.localhost.pomerium.io
    to: http://wild:80
    allow_any_authenticated_user: true
  - id: office
    from: https://office.localhost.pomerium.io
    to: http://office:80
    policy:
      allow:
        and:
          - source_ip: 10.1.0.0/16
  - id: deny-delete
    from: https://dd.localhost.pomerium.io
    to: http://dd:80
    policy:
      allow:
        and:
          - authenticated_user: true
      deny:
        and:
          - http_method: DELETE
  - id: port
    from: https://port.localhost.pomerium.io:8443
    to: http://port:80
    allow_any_authenticated_user: true
`

func testConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestService returns a service on cfg whose store is fed directly and
// marked synced at server version 1.
func newTestService(t testing.TB, cfg *config.Config) *Service {
	t.Helper()
	s, err := New(context.Background(), Options{Source: config.NewStaticSource(cfg), Logger: discardLogger()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.store.markSynced(1, 1)
	return s
}

func listOf(vals ...string) *structpb.ListValue {
	l := &structpb.ListValue{}
	for _, v := range vals {
		l.Values = append(l.Values, structpb.NewStringValue(v))
	}
	return l
}

// user is a test user: id, email, groups.
type user struct {
	id, email, name string
	groups          []string
}

var (
	alice = user{id: "alice-id", email: "alice@example.com", name: "Alice", groups: []string{"admins", "staff"}}
	bob   = user{id: "bob-id", email: "bob@other.org", name: "Bob"}
	carol = user{id: "carol-id", email: "carol@example.com", name: "Carol", groups: []string{"staff"}}
)

func (u user) record() *userv1.User {
	return &userv1.User{Id: u.id, Email: u.email, Name: u.name, Claims: map[string]*structpb.ListValue{
		"email": listOf(u.email),
	}}
}

func (u user) session(id string, expires time.Time) *sessionv1.Session {
	return &sessionv1.Session{
		Id:        id,
		UserId:    u.id,
		ExpiresAt: timestamppb.New(expires),
		Claims: map[string]*structpb.ListValue{
			"groups": listOf(u.groups...),
			"email":  listOf(u.email),
		},
	}
}

// signIn puts u's user and a session sid into the store at version and
// returns the session handle.
func signIn(t testing.TB, s *Service, u user, sid string, version uint64) string {
	t.Helper()
	s.store.putUser(u.record(), version)
	s.store.putSession(u.session(sid, time.Now().Add(time.Hour)), version)
	return handleFor(t, s, u.id, sid, 1, version)
}

func handleFor(t testing.TB, s *Service, uid, sid string, serverVersion, recordVersion uint64) string {
	t.Helper()
	now := time.Now()
	tok, err := sessionhandle.Encode(s.state.Load().handleKey, &sessionhandle.Handle{
		ID: sid, UserID: uid, Issuer: "authenticate.localhost.pomerium.io",
		IssuedAt: now, Expiry: now.Add(time.Hour),
		DatabrokerServerVersion: serverVersion, DatabrokerRecordVersion: recordVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// reqOpt shapes a test CheckRequest.
type reqOpt func(*authv3.CheckRequest)

func newReq(method, rawURL string, opts ...reqOpt) *authv3.CheckRequest {
	scheme, rest, _ := strings.Cut(rawURL, "://")
	host, path := rest, "/"
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "192.0.2.10"},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id:      "req-1",
			Method:  method,
			Host:    host,
			Path:    path,
			Scheme:  scheme,
			Headers: map[string]string{":authority": host},
		}},
	}}
	for _, o := range opts {
		o(req)
	}
	return req
}

func header(k, v string) reqOpt {
	return func(r *authv3.CheckRequest) { r.Attributes.Request.Http.Headers[k] = v }
}

func cookie(tok string) reqOpt { return header("cookie", "other=1; _pomerium="+tok+"; x=y") }

func fromBrowser() reqOpt { return header("accept", "text/html,application/xhtml+xml,*/*;q=0.8") }

func jsonClient() reqOpt { return header("accept", "application/json") }

func xhr() reqOpt {
	return func(r *authv3.CheckRequest) {
		fromBrowser()(r)
		header("x-requested-with", "XMLHttpRequest")(r)
	}
}

func ctxExt(k, v string) reqOpt {
	return func(r *authv3.CheckRequest) {
		if r.Attributes.ContextExtensions == nil {
			r.Attributes.ContextExtensions = map[string]string{}
		}
		r.Attributes.ContextExtensions[k] = v
	}
}

func sourceIP(ip string) reqOpt {
	return func(r *authv3.CheckRequest) {
		r.Attributes.Source.Address.GetSocketAddress().Address = ip
	}
}

// okHeaders returns the headers an OK response sets, by name.
func okHeaders(resp *authv3.CheckResponse) map[string]string {
	m := map[string]string{}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		m[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return m
}

func deniedHeaders(resp *authv3.CheckResponse) map[string]string {
	m := map[string]string{}
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		m[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return m
}

// verifyJWT checks an identity JWT against the JWKS and returns its claims.
func verifyJWT(t testing.TB, jwks jose.JSONWebKeySet, token string) map[string]any {
	t.Helper()
	tok, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256})
	if err != nil {
		t.Fatalf("parse JWT: %v", err)
	}
	if len(tok.Headers) != 1 {
		t.Fatalf("JWT headers: %v", tok.Headers)
	}
	keys := jwks.Key(tok.Headers[0].KeyID)
	if len(keys) == 0 {
		t.Fatalf("JWT kid %q not in JWKS", tok.Headers[0].KeyID)
	}
	var claims map[string]any
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("verify JWT: %v", err)
	}
	return claims
}

func jsonBody(t testing.TB, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	return m
}

// parseErr parses yaml and returns the configuration or its error.
func parseErr(yaml string) (*config.Config, error) {
	return config.Parse([]byte(yaml), "test.yaml", func(string) (string, bool) { return "", false })
}
