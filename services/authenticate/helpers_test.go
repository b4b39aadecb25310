package authenticate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	pkgdatabroker "github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/devidp"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
	"github.com/gatehouse/gatehouse/services/databroker/databrokertest"
)

// Fixed test secrets (32 bytes each, base64).
var (
	testSharedSecret = "93pDpOHbb0pg+nEAHTZS1COZMt/53VNFXDp/hkyGHCg="
	testCookieSecret = "HmVs8hCfDZ2PW46zvbj4j7k2jZhVb3Tuq0Rxsvtxl8I="
)

const (
	testClientID     = "gatehouse"
	testClientSecret = "dev-secret"
)

// env is an authenticate service under test with a real in-process
// databroker and dev IdP, each on its own loopback port.
type env struct {
	t         *testing.T
	svc       *Service
	cfg       *config.Config
	db        databrokerv1.DataBrokerServiceClient
	idp       *devidp.Server
	idpURL    string
	authURL   *url.URL
	appOrigin string // the route's origin, http://app.localhost:PORT
	authSrv   *httptest.Server
	idpSrv    *httptest.Server
	binding   handoff.Binding // of the last browser sign-in URL signInURL made
	dbServer  *databrokertest.Server
}

type envOptions struct {
	accessTokenTTL time.Duration
	extraYAML      string
	idpDown        bool // start without an IdP listening
	run            bool // start Run (the refresher)
	// authHTTPS makes authenticate_service_url https:// (the service
	// still listens on plain HTTP, as behind a TLS load balancer).
	authHTTPS bool
	// dbOptions configure the test databroker (its storage, say).
	dbOptions []databrokertest.Option
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() || os.Getenv("AUTHN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t}
	db := databrokertest.Start(t, o.dbOptions...)
	e.dbServer = db
	e.db = db.Client()

	e.authSrv = httptest.NewUnstartedServer(nil)
	authPort := e.authSrv.Listener.Addr().(*net.TCPAddr).Port
	e.idpSrv = httptest.NewUnstartedServer(nil)
	e.idpURL = "http://" + e.idpSrv.Listener.Addr().String()
	e.appOrigin = "http://app.localhost:18080"

	authScheme := "http"
	if o.authHTTPS {
		authScheme = "https"
	}
	yaml := fmt.Sprintf(`
services: authenticate
insecure_server: true
authenticate_service_url: %s://authenticate.localhost:%d
databroker_service_url: http://127.0.0.1:1
shared_secret: %s
cookie_secret: %s
idp_provider: oidc
idp_provider_url: %s
idp_client_id: %s
idp_client_secret: %s
signout_redirect_url: http://app.localhost:18080/bye
routes:
  - from: %s
    to: http://127.0.0.1:9
    allow_any_authenticated_user: true
  - from: http://*.wild.localhost
    to: http://127.0.0.1:9
    allow_any_authenticated_user: true
%s`, authScheme, authPort, testSharedSecret, testCookieSecret, e.idpURL, testClientID, testClientSecret, e.appOrigin, o.extraYAML)
	cfg, err := config.Parse([]byte(yaml), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	e.cfg = cfg
	e.authURL = cfg.AuthenticateURLParsed

	idp, err := devidp.New(devidp.Config{
		Issuer:       e.idpURL,
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		// The route's origin is registered too, so that the IdP accepts it
		// as a post_logout_redirect_uri.
		RedirectURIs:   []string{e.authURL.String() + "/oauth2/callback", e.appOrigin + "/"},
		AccessTokenTTL: o.accessTokenTTL,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.idp = idp
	e.idpSrv.Config.Handler = idp.Handler()
	if o.idpDown {
		e.idpSrv.Listener.Close()
	} else {
		e.idpSrv.Start()
		t.Cleanup(e.idpSrv.Close)
	}

	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, Options{Source: config.NewStaticSource(cfg), Logger: testLogger(t), DataBroker: db.Conn()})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.authSrv.Config.Handler = svc.Handler()
	e.authSrv.Start()
	done := make(chan struct{})
	if o.run {
		go func() { defer close(done); _ = svc.Run(ctx) }()
	} else {
		close(done)
	}
	t.Cleanup(func() {
		cancel()
		<-done
		e.authSrv.Close()
	})
	return e
}

// startIdP starts the IdP of an env made with idpDown, on its address.
func (e *env) startIdP() {
	e.t.Helper()
	lis, err := net.Listen("tcp", strings.TrimPrefix(e.idpURL, "http://"))
	if err != nil {
		e.t.Fatalf("IdP port taken meanwhile: %v", err)
	}
	e.idpSrv.Listener = lis
	e.idpSrv.Start()
	e.t.Cleanup(e.idpSrv.Close)
}

// client returns an HTTP client with a cookie jar that reaches every host
// name on 127.0.0.1 (keeping the port) and follows no redirect.
func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:       jar,
		Transport: loopbackTransport(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: 20 * time.Second,
	}
}

// loopbackTransport dials 127.0.0.1 whatever the host name, so tests can use
// real-looking names (authenticate.localhost, app.localhost).
func loopbackTransport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
		DisableKeepAlives: true,
	}
}

// signInURL returns a correctly signed sign-in URL to ret; a browser one
// carries a sign-in binding, as the proxy adds it (e.binding).
func (e *env) signInURL(ret string, programmatic bool) string {
	u := handoff.SignInURL(e.authURL, ret, programmatic, e.cfg.URLKey, time.Now())
	if programmatic {
		return u.String()
	}
	e.binding = handoff.NewBinding()
	bound, err := handoff.BindSignInURL(u, e.binding.Param(), e.cfg.URLKey, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return bound.String()
}

// openCallback opens a callback URL as the proxy does, for its own host.
func (e *env) openCallback(back *url.URL) *handoff.Callback {
	e.t.Helper()
	cipher, _ := cryptutil.NewCipher(e.cfg.CookieSealKey)
	cb, err := handoff.OpenCallback(back, back.Host, e.cfg.URLKey, cipher, time.Now())
	if err != nil {
		e.t.Fatalf("OpenCallback(%s): %v", back, err)
	}
	return cb
}

// get GETs u and returns the response with its body read.
func get(t testing.TB, c *http.Client, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, c, req)
}

func do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(b)
}

func postForm(t testing.TB, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, c, req)
}

func location(t testing.TB, resp *http.Response) *url.URL {
	t.Helper()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s %s: status %d, want a redirect", resp.Request.Method, resp.Request.URL, resp.StatusCode)
	}
	u, err := resp.Location()
	if err != nil {
		t.Fatalf("redirect without Location: %v", err)
	}
	return u
}

// toIdP starts a sign-in at the signed URL and follows it to the IdP's
// login form; it returns the authRequestID and the state sent to the IdP.
func (e *env) toIdP(c *http.Client, signIn string) (authRequestID, state string) {
	t := e.t
	t.Helper()
	resp, body := get(t, c, signIn)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign_in: status %d: %s", resp.StatusCode, body)
	}
	authz := location(t, resp)
	state = authz.Query().Get("state")
	if authz.Query().Get("code_challenge_method") != "S256" || authz.Query().Get("nonce") == "" {
		t.Fatalf("authorization URL lacks PKCE S256 or nonce: %s", authz)
	}
	resp, _ = get(t, c, authz.String())
	login := location(t, resp)
	return login.Query().Get("authRequestID"), state
}

// loginAt posts the dev IdP's form and returns the callback URL it
// redirects to.
func (e *env) loginAt(c *http.Client, authRequestID, email, name, groups string) *url.URL {
	t := e.t
	t.Helper()
	resp, body := postForm(t, c, e.idpURL+"/login", url.Values{
		"authRequestID": {authRequestID}, "email": {email}, "name": {name}, "groups": {groups},
	})
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: status %d: %s", resp.StatusCode, body)
	}
	return location(t, resp)
}

// signIn runs a whole browser sign-in to ret and returns where the
// callback sent the browser.
func (e *env) signIn(c *http.Client, ret, email, name, groups string) *url.URL {
	t := e.t
	t.Helper()
	id, _ := e.toIdP(c, e.signInURL(ret, false))
	cb := e.loginAt(c, id, email, name, groups)
	resp, body := get(t, c, cb.String())
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: status %d: %s", resp.StatusCode, body)
	}
	return location(t, resp)
}

// sessions returns the live session records.
func (e *env) sessions() []*sessionv1.Session {
	e.t.Helper()
	resp, err := e.db.Query(context.Background(), &databrokerv1.QueryRequest{Type: pkgdatabroker.SessionType})
	if err != nil {
		e.t.Fatalf("query sessions: %v", err)
	}
	var out []*sessionv1.Session
	for _, r := range resp.GetRecords() {
		var s sessionv1.Session
		if err := r.GetData().UnmarshalTo(&s); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, &s)
	}
	return out
}

func (e *env) session(id string) *sessionv1.Session {
	e.t.Helper()
	for _, s := range e.sessions() {
		if s.Id == id {
			return s
		}
	}
	return nil
}

func (e *env) user(id string) *userv1.User {
	e.t.Helper()
	resp, err := e.db.Get(context.Background(), &databrokerv1.GetRequest{Type: pkgdatabroker.UserType, Id: id})
	if err != nil {
		e.t.Fatalf("get user %s: %v", id, err)
	}
	var u userv1.User
	if err := resp.GetRecord().GetData().UnmarshalTo(&u); err != nil {
		e.t.Fatal(err)
	}
	return &u
}

func listStrings(lv *structpb.ListValue) []string {
	var out []string
	for _, v := range lv.GetValues() {
		out = append(out, v.GetStringValue())
	}
	return out
}
