package authorize_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	pkgdatabroker "github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/grpcutil"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
	"github.com/gatehouse/gatehouse/services/authorize"
	"github.com/gatehouse/gatehouse/services/databroker"
	"github.com/gatehouse/gatehouse/services/databroker/databrokertest"
)

// envoyTest is a databroker (memory storage) and an authorize service,
// each on its own loopback gRPC server with service-token auth, and the
// clients a proxy and authenticate would hold.
type envoyTest struct {
	cfg        *config.Config
	authz      authv3.AuthorizationClient
	local      authv3.AuthorizationClient
	databroker databrokerv1.DataBrokerServiceClient
	azAddr     string

	db *databrokertest.Server
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

func startEnvoyTest(t *testing.T) *envoyTest {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	secret := base64.StdEncoding.EncodeToString(cryptutil.RandomBytes(32))

	dbAddr := testutil.FreeAddr(t)
	yaml := `
services: authorize
shared_secret: ` + secret + `
authenticate_service_url: https://authenticate.localhost.pomerium.io
databroker_service_url: http://` + dbAddr + `
grpc_insecure: true
jwt_claims_headers: email
routes:
  - from: https://grafana.localhost.pomerium.io
    to: http://grafana:3000
    pass_identity_headers: true
    policy:
      - allow:
          or:
            - domain:
                is: example.com
`
	cfg, err := config.Parse([]byte(yaml), "config.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())

	// The databroker.
	e := &envoyTest{}
	e.db = databrokertest.Start(t, databrokertest.WithAddr(dbAddr), databrokertest.WithSharedKey(cfg.SharedKey),
		databrokertest.WithOptions(databroker.Options{StorageType: databroker.StorageTypeMemory, Logger: logger}))
	dbConn := e.db.Conn()

	// The authorize service.
	svc, err := authorize.New(ctx, authorize.Options{Source: config.NewStaticSource(cfg), Logger: logger, DataBroker: dbConn})
	if err != nil {
		t.Fatal(err)
	}
	azLis := listen(t)
	azSrv := grpcutil.NewServer(grpcutil.ServerOptions{SharedKey: cfg.SharedKey, Logger: logger})
	svc.Register(azSrv)
	go func() { _ = azSrv.Serve(azLis) }()
	azDone := make(chan struct{})
	go func() { defer close(azDone); _ = svc.Run(ctx) }()

	azURL, _ := url.Parse("http://" + azLis.Addr().String())
	azConn, err := grpcutil.Dial(grpcutil.ClientOptions{Targets: []*url.URL{azURL}, SharedKey: cfg.SharedKey, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		azConn.Close()
		azSrv.Stop()
		cancel()
		<-azDone
	})

	testutil.WaitFor(t, 10*time.Second, "authorize's first sync", svc.Ready)
	e.cfg = cfg
	e.authz = authv3.NewAuthorizationClient(azConn)
	e.local = extauthz.LocalClient{Server: svc}
	e.databroker = e.db.Client()
	e.azAddr = azLis.Addr().String()
	return e
}

// signIn does what authenticate does after the IdP's callback: it Puts the
// user and the session records to the databroker and returns the handle,
// carrying the versions they were written at.
func (e *envoyTest) signIn(t *testing.T, uid, email, sid string, groups ...string) string {
	t.Helper()
	gl := &structpb.ListValue{}
	for _, g := range groups {
		gl.Values = append(gl.Values, structpb.NewStringValue(g))
	}
	u, _ := anypb.New(&userv1.User{Id: uid, Email: email, Name: "Name of " + uid})
	s, _ := anypb.New(&sessionv1.Session{
		Id: sid, UserId: uid,
		IssuedAt:  timestamppb.Now(),
		ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
		Claims:    map[string]*structpb.ListValue{"groups": gl},
	})
	resp, err := e.databroker.Put(context.Background(), &databrokerv1.PutRequest{Records: []*databrokerv1.Record{
		{Type: pkgdatabroker.UserType, Id: uid, Data: u},
		{Type: pkgdatabroker.SessionType, Id: sid, Data: s},
	}})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	now := time.Now()
	tok, err := sessionhandle.Encode(e.cfg.HandleKey, &sessionhandle.Handle{
		ID: sid, UserID: uid, IssuedAt: now, Expiry: now.Add(time.Hour),
		DatabrokerServerVersion: resp.GetServerVersion(),
		DatabrokerRecordVersion: resp.GetRecords()[1].GetVersion(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// request is the CheckRequest gatehouse's proxy sends.
func request(path string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{":authority": "grafana.localhost.pomerium.io"}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 50000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "rid-42", Method: "GET", Host: "grafana.localhost.pomerium.io", Path: path, Scheme: "https", Headers: h,
		}},
	}}
}

func (e *envoyTest) check(t *testing.T, c authv3.AuthorizationClient, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp
}

// jwksFromHandler fetches the JWKS the way an upstream does, from the
// handler authenticate serves it with.
func jwksFromHandler(t *testing.T, cfg *config.Config) jose.JSONWebKeySet {
	t.Helper()
	ks, err := cfg.KeySet()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	ks.JWKSHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://authenticate.localhost.pomerium.io/.well-known/pomerium/jwks.json", nil))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	return set
}

func TestCheckOverGRPC(t *testing.T) {
	e := startEnvoyTest(t)
	jwks := jwksFromHandler(t, e.cfg)
	const browser = "text/html,application/xhtml+xml,*/*;q=0.8"

	// Checked right after sign-in: the handle is newer than what the
	// cache may have, so authorize waits for the Sync stream.
	alice := e.signIn(t, "alice-sub", "alice@example.com", "sess-a", "admins")
	bob := e.signIn(t, "bob-sub", "bob@other.org", "sess-b")

	for name, c := range map[string]authv3.AuthorizationClient{"grpc": e.authz, "local": e.local} {
		t.Run(name, func(t *testing.T) {
			t.Run("alice allowed with a JWT that verifies against the JWKS", func(t *testing.T) {
				resp := e.check(t, c, request("/d/home?orgId=1", map[string]string{"cookie": "_pomerium=" + alice, "accept": browser}))
				if !extauthz.Allowed(resp) {
					t.Fatalf("denied %d: %s", extauthz.DeniedStatus(resp), resp.GetDeniedResponse().GetBody())
				}
				tok, err := josejwt.ParseSigned(extauthz.ResponseHeader(resp, "x-pomerium-jwt-assertion"), []jose.SignatureAlgorithm{jose.ES256})
				if err != nil {
					t.Fatal(err)
				}
				keys := jwks.Key(tok.Headers[0].KeyID)
				if len(keys) != 1 {
					t.Fatalf("kid %q not in the JWKS", tok.Headers[0].KeyID)
				}
				var std josejwt.Claims
				var claims struct {
					Email  string   `json:"email"`
					User   string   `json:"user"`
					Name   string   `json:"name"`
					Groups []string `json:"groups"`
					SID    string   `json:"sid"`
				}
				if err := tok.Claims(keys[0].Key, &std, &claims); err != nil {
					t.Fatalf("verify: %v", err)
				}
				if err := std.Validate(josejwt.Expected{Issuer: "grafana.localhost.pomerium.io", AnyAudience: []string{"grafana.localhost.pomerium.io"}, Subject: "alice-sub", Time: time.Now()}); err != nil {
					t.Errorf("claims: %v", err)
				}
				if std.Expiry.Time().Sub(std.IssuedAt.Time()) != 5*time.Minute || std.ID == "" {
					t.Errorf("exp %v iat %v jti %q", std.Expiry, std.IssuedAt, std.ID)
				}
				if claims.Email != "alice@example.com" || claims.User != "alice-sub" || claims.Name != "Name of alice-sub" ||
					claims.SID != "sess-a" || len(claims.Groups) != 1 || claims.Groups[0] != "admins" {
					t.Errorf("claims %+v", claims)
				}
				if got := extauthz.ResponseHeader(resp, "x-pomerium-claim-email"); got != "alice@example.com" {
					t.Errorf("claim header %q", got)
				}
			})
			t.Run("bob denied with HTML for a browser", func(t *testing.T) {
				resp := e.check(t, c, request("/", map[string]string{"cookie": "_pomerium=" + bob, "accept": browser}))
				if extauthz.DeniedStatus(resp) != 403 || extauthz.Allowed(resp) {
					t.Fatalf("status %d", extauthz.DeniedStatus(resp))
				}
				body := resp.GetDeniedResponse().GetBody()
				if !strings.Contains(body, "<html") || !strings.Contains(body, "rid-42") || !strings.Contains(body, handoff.SignOutPath) {
					t.Errorf("page: %s", body)
				}
			})
			t.Run("bob denied with JSON for an API client", func(t *testing.T) {
				resp := e.check(t, c, request("/api/search", map[string]string{"authorization": "Bearer Pomerium-" + bob, "accept": "application/json"}))
				if extauthz.DeniedStatus(resp) != 403 {
					t.Fatalf("status %d", extauthz.DeniedStatus(resp))
				}
				if body := resp.GetDeniedResponse().GetBody(); body != `{"error":"forbidden","request_id":"rid-42"}`+"\n" {
					t.Errorf("body %q", body)
				}
			})
			t.Run("browser without a session is redirected to a signed sign-in URL", func(t *testing.T) {
				resp := e.check(t, c, request("/d/home?orgId=1", map[string]string{"accept": browser}))
				if extauthz.DeniedStatus(resp) != 302 {
					t.Fatalf("status %d", extauthz.DeniedStatus(resp))
				}
				u, err := url.Parse(extauthz.ResponseHeader(resp, "location"))
				if err != nil {
					t.Fatal(err)
				}
				if u.Host != "authenticate.localhost.pomerium.io" || u.Path != handoff.SignInPath ||
					u.Query().Get(handoff.QueryRedirectURI) != "https://grafana.localhost.pomerium.io/d/home?orgId=1" {
					t.Errorf("location %s", u)
				}
				if err := cryptutil.VerifySignedURL(e.cfg.URLKey, u, time.Now()); err != nil {
					t.Errorf("signature: %v", err)
				}
			})
			t.Run("XHR without a session gets 401", func(t *testing.T) {
				resp := e.check(t, c, request("/api/x", map[string]string{"accept": browser, "x-requested-with": "XMLHttpRequest"}))
				if extauthz.DeniedStatus(resp) != 401 {
					t.Fatalf("status %d", extauthz.DeniedStatus(resp))
				}
			})
		})
	}

	t.Run("signed-out session is refused once the delete is synced", func(t *testing.T) {
		req := request("/", map[string]string{"cookie": "_pomerium=" + alice, "accept": "application/json"})
		if resp := e.check(t, e.authz, req); !extauthz.Allowed(resp) {
			t.Fatal("alice not allowed before sign-out")
		}
		if _, err := e.databroker.Put(context.Background(), &databrokerv1.PutRequest{Records: []*databrokerv1.Record{
			{Type: pkgdatabroker.SessionType, Id: "sess-a", DeletedAt: timestamppb.Now()},
		}}); err != nil {
			t.Fatalf("delete: %v", err)
		}
		var resp *authv3.CheckResponse
		testutil.WaitFor(t, 5*time.Second, "the signed-out session to be refused", func() bool {
			resp = e.check(t, e.authz, req)
			return !extauthz.Allowed(resp)
		})
		if extauthz.DeniedStatus(resp) != 401 {
			t.Errorf("status %d, want 401", extauthz.DeniedStatus(resp))
		}
	})

	t.Run("a caller without the service token is refused", func(t *testing.T) {
		conn, err := grpc.NewClient(e.azAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = authv3.NewAuthorizationClient(conn).Check(context.Background(), request("/", nil))
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("err %v, want Unauthenticated", err)
		}
	})
}

// A databroker that comes back with an empty store (a memory databroker
// restarted) has another server version: authorize's Sync is refused with
// Aborted, it starts over with SyncLatest, and the sessions of the old
// store are gone; new sign-ins work.
func TestSyncStartsOverAfterDatabrokerWipe(t *testing.T) {
	e := startEnvoyTest(t)
	alice := e.signIn(t, "alice-sub", "alice@example.com", "sess-a")
	req := request("/", map[string]string{"cookie": "_pomerium=" + alice, "accept": "application/json"})
	if resp := e.check(t, e.authz, req); !extauthz.Allowed(resp) {
		t.Fatalf("before restart: %d", extauthz.DeniedStatus(resp))
	}

	e.db.Restart()

	testutil.WaitFor(t, 15*time.Second, "old session refused", func() bool {
		return extauthz.DeniedStatus(e.check(t, e.authz, req)) == 401
	})
	var alice2 string
	testutil.WaitFor(t, 15*time.Second, "sign in on the new store", func() bool {
		_, err := e.databroker.ServerInfo(context.Background(), &databrokerv1.ServerInfoRequest{})
		return err == nil
	})
	alice2 = e.signIn(t, "alice-sub", "alice@example.com", "sess-a2")
	if resp := e.check(t, e.authz, request("/", map[string]string{"cookie": "_pomerium=" + alice2})); !extauthz.Allowed(resp) {
		t.Fatalf("after restart: %d", extauthz.DeniedStatus(resp))
	}
}
