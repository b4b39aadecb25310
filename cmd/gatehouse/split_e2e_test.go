package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/devcerts"
	"github.com/gatehouse/gatehouse/pkg/devidp"
	"github.com/gatehouse/gatehouse/pkg/grafanatest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// deployment is the Grafana guide's split deployment on loopback: Redis
// or PostgreSQL, two databrokers, two authorizes, one authenticate, two proxies, the dev
// IdP and a Grafana-faithful upstream. Host names of the guide
// (*.localhost.pomerium.io) are mapped to 127.0.0.1 by the test's dialer.
type deployment struct {
	procSet
	dir     string
	caPool  *x509.CertPool
	grafana *grafanatest.Server
	idpURL  string
	authURL string
	idp     *testutil.Process
	idpArgs []string
	redis   *testutil.Redis
	// upstream counts what reached Grafana, by Grafana's answer.
	upstream upstreamCounter
	// proxyAMetrics is proxy A's metrics_address.
	proxyAMetrics string
}

// upstreamCounter counts the requests that reached the upstream: all of
// them, and those it refused (no valid identity JWT).
type upstreamCounter struct {
	total, refused atomic.Int64
}

func (c *upstreamCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		c.total.Add(1)
		if rec.status == http.StatusUnauthorized || rec.status == http.StatusForbidden {
			c.refused.Add(1)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

const guideDomain = "localhost.pomerium.io"

// mapToLoopback dials every *.localhost.pomerium.io name on 127.0.0.1,
// keeping the port, as Pomerium's public DNS does for that domain.
func mapToLoopback(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && strings.HasSuffix(host, guideDomain) {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// startDeployment starts the split deployment with its databrokers on
// storage "redis" or "postgres"; each of configure may change the shared
// config before it is written.
func startDeployment(t *testing.T, storage string, configure ...func(*configtest.Builder)) *deployment {
	t.Helper()
	d := &deployment{procSet: newProcSet(t), dir: t.TempDir()}
	certs, err := devcerts.Write(filepath.Join(d.dir, "certs"), guideDomain, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(certs.CACert)
	d.caPool = x509.NewCertPool()
	d.caPool.AppendCertsFromPEM(caPEM)

	var storageURL string
	switch storage {
	case "redis":
		d.redis = testutil.StartRedis(t)
		storageURL = d.redis.URL()
	case "postgres":
		storageURL = testutil.StartPostgres(t).CreateDatabase(t, "gatehouse")
	default:
		t.Fatalf("unknown storage %q", storage)
	}
	authnAddr := testutil.FreeAddr(t)
	_, authnPort, _ := net.SplitHostPort(authnAddr)
	d.authURL = "https://authenticate." + guideDomain + ":" + authnPort

	// The dev IdP, as its own process.
	idpAddr := testutil.FreeAddr(t)
	d.idpURL = "http://" + idpAddr
	d.idpArgs = []string{"dev-idp", "--address", idpAddr, "--issuer", d.idpURL,
		"--client-id", "gatehouse", "--client-secret", "idp-secret", "--redirect-uri", d.authURL + "/oauth2/callback"}
	d.idp = testutil.StartProcess(t, "dev-idp", d.bin, d.idpArgs)
	testutil.WaitHTTP(t, d.idpURL+"/.well-known/openid-configuration", 20*time.Second, d.idp)

	// Grafana, configured by the guide's grafana.ini (auto sign-up variant)
	// with jwk_set_url pointing at this deployment's authenticate service.
	// Its JWKS client is cloned from the default transport: map the names.
	http.DefaultTransport.(*http.Transport).DialContext = mapToLoopback
	ini := fmt.Sprintf(`[auth.jwt]
enabled = true
header_name = X-Pomerium-Jwt-Assertion
email_claim = email
jwk_set_url = %s/.well-known/pomerium/jwks.json
cache_ttl = 60m
username_claim = sub
auto_sign_up = true
tls_client_ca = %s
[users]
auto_assign_org = true
auto_assign_org_role = Editor
`, d.authURL, certs.CACert)
	gcfg, err := grafanatest.ParseINI([]byte(ini))
	if err != nil {
		t.Fatal(err)
	}
	d.grafana, err = grafanatest.New(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	grafanaSrv := httptest.NewServer(d.upstream.wrap(d.grafana.Handler()))
	t.Cleanup(grafanaSrv.Close)

	// The guide's config.yaml route, with what a deployment adds around it.
	b := configtest.New().
		Delete("insecure_server").
		Set("authenticate_service_url", d.authURL).
		Set("certificate_file", certs.Cert).
		Set("certificate_key_file", certs.Key).
		Set("databroker_storage_type", storage).
		Set("databroker_storage_connection_string", storageURL).
		IdP(d.idpURL, "idp-secret").
		Route(`
			from: https://grafana.localhost.pomerium.io
			to: ` + grafanaSrv.URL + `
			pass_identity_headers: true
			policy:
			  - allow:
			      or:
			        - domain:
			            is: example.com`)
	for _, c := range configure {
		c(b)
	}
	d.config = b.Write(t)

	db1, db2, az1, az2 := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	dbURLs := "DATABROKER_SERVICE_URLS=http://" + db1 + ",http://" + db2
	azURLs := "AUTHORIZE_SERVICE_URLS=http://" + az1 + ",http://" + az2
	d.add("databroker-1", "SERVICES=databroker", "GRPC_ADDRESS="+db1)
	d.add("databroker-2", "SERVICES=databroker", "GRPC_ADDRESS="+db2)
	// The guide's environment form of jwt_claims_headers.
	d.add("authorize-1", "SERVICES=authorize", "GRPC_ADDRESS="+az1, dbURLs, "JWT_CLAIMS_HEADERS=email,name")
	d.add("authorize-2", "SERVICES=authorize", "GRPC_ADDRESS="+az2, dbURLs, "JWT_CLAIMS_HEADERS=email,name")
	d.add("authenticate", "SERVICES=authenticate", "ADDRESS="+authnAddr, dbURLs)
	// Proxy A follows the databrokers' changes and so reuses authorize's
	// answers until a session or user changes; proxy B asks every time.
	d.proxyAMetrics = testutil.FreeAddr(t)
	d.add("proxy-a", "SERVICES=proxy", "ADDRESS="+testutil.FreeAddr(t), azURLs, dbURLs, "METRICS_ADDRESS="+d.proxyAMetrics)
	d.add("proxy-b", "SERVICES=proxy", "ADDRESS="+testutil.FreeAddr(t), azURLs)
	for _, name := range []string{"databroker-1", "databroker-2", "authorize-1", "authorize-2", "authenticate", "proxy-a", "proxy-b"} {
		d.start(name)
	}
	for _, name := range []string{"databroker-1", "databroker-2", "authorize-1", "authorize-2", "authenticate", "proxy-a", "proxy-b"} {
		d.waitReady(name)
	}
	return d
}

// proxyURL is the guide's Grafana URL through one proxy process.
func (d *deployment) proxyURL(proxy, path string) string {
	for _, e := range d.procs[proxy].env {
		if addr, ok := strings.CutPrefix(e, "ADDRESS="); ok {
			_, port, _ := net.SplitHostPort(addr)
			return "https://grafana." + guideDomain + ":" + port + path
		}
	}
	d.t.Fatalf("no address for %s", proxy)
	return ""
}

// browser is a cookie-jar client that trusts the deployment's CA and
// reaches the guide's host names on loopback.
func (d *deployment) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{
		DialContext:     mapToLoopback,
		TLSClientConfig: &tls.Config{RootCAs: d.caPool},
	}
	return &http.Client{Jar: jar, Transport: tr, Timeout: 20 * time.Second}
}

// signIn goes to target through the proxy as a browser does, signs in at
// the dev IdP, and returns the final response.
func (d *deployment) signIn(c *http.Client, target, email, name, groups string) *http.Response {
	d.t.Helper()
	return testutil.DevIDPSignIn(d.t, c, target, email, name, groups)
}

func get(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	return testutil.BrowserGet(t, c, u)
}

func readJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", resp.Request.URL, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: %v: %s", resp.Request.URL, err, body)
	}
}

// TestGrafanaGuideSplitDeployment runs the guide's split deployment once
// with the databrokers on Redis and once on PostgreSQL.
func TestGrafanaGuideSplitDeployment(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole deployment")
	}
	for _, storage := range []string{"redis", "postgres"} {
		t.Run(storage, func(t *testing.T) { testGrafanaGuideSplitDeployment(t, storage) })
	}
}

func testGrafanaGuideSplitDeployment(t *testing.T, storage string) {
	d := startDeployment(t, storage)

	// Alice signs in through proxy A and Grafana logs her in by the JWT.
	alice := d.browser()
	var user grafanatest.User
	readJSON(t, d.signIn(alice, d.proxyURL("proxy-a", "/api/user"), "alice@example.com", "Alice Liddell", "admins,dev"), &user)
	if user.Login != devidp.Subject("alice@example.com") || user.Email != "alice@example.com" || user.Name != "Alice Liddell" || user.OrgRole != "Editor" {
		t.Fatalf("grafana user = %+v", user)
	}
	h := d.grafana.LastHeaders()
	if h.Get("X-Pomerium-Claim-Email") != "alice@example.com" || h.Get("X-Pomerium-Claim-Name") != "Alice Liddell" {
		t.Fatalf("claim headers: email %q name %q", h.Get("X-Pomerium-Claim-Email"), h.Get("X-Pomerium-Claim-Name"))
	}

	// The /.pomerium tip: the JWT's claims, on the route host.
	var claims map[string]any
	req, _ := http.NewRequest(http.MethodGet, d.proxyURL("proxy-a", "/.pomerium/user"), nil)
	resp, err := alice.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readJSON(t, resp, &claims)
	if claims["email"] != "alice@example.com" {
		t.Fatalf("/.pomerium/user = %v", claims)
	}

	// Bob is not in example.com: the guide's policy denies him.
	bob := d.browser()
	resp = d.signIn(bob, d.proxyURL("proxy-a", "/api/user"), "bob@other.org", "Bob", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob: %d, want 403", resp.StatusCode)
	}

	// One authorize and one databroker stop: requests keep succeeding.
	d.stop("authorize-1")
	d.stop("databroker-1")
	for i := 0; i < 20; i++ {
		for _, p := range []string{"proxy-a", "proxy-b"} {
			readJSON(t, get(t, alice, d.proxyURL(p, "/api/user")), &user)
		}
	}
	d.start("authorize-1")
	d.start("databroker-1")
	d.waitReady("authorize-1")
	d.waitReady("databroker-1")

	// Sign out through proxy B: proxy A refuses the session within a
	// second, though it had been answering her requests without asking
	// authorize.
	reused := func() float64 {
		return metricValue(t, "http://"+d.proxyAMetrics+"/metrics", "gatehouse_proxy_reused_decisions_total")
	}
	testutil.WaitFor(t, 10*time.Second, "proxy A to answer alice again without asking authorize", func() bool {
		before := reused()
		readJSON(t, get(t, alice, d.proxyURL("proxy-a", "/api/user")), &user)
		return reused() > before
	})
	aliceCookies := alice.Jar.Cookies(mustURL(t, d.proxyURL("proxy-a", "/")))
	resp = signOutByForm(t, alice, d.proxyURL("proxy-b", "/.pomerium/sign_out"))
	resp.Body.Close()
	replay := d.browser()
	replay.Jar.SetCookies(mustURL(t, d.proxyURL("proxy-a", "/")), aliceCookies)
	replay.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	testutil.WaitFor(t, time.Second, "proxy A to refuse the signed-out session", func() error {
		resp := get(t, replay, d.proxyURL("proxy-a", "/api/user"))
		resp.Body.Close()
		if resp.StatusCode == http.StatusFound && strings.Contains(resp.Header.Get("Location"), "/.pomerium/sign_in") {
			return nil
		}
		return fmt.Errorf("proxy A answers %d for a signed-out session", resp.StatusCode)
	})

	// Alice signs in again; every gatehouse process restarts; her session
	// lives in the storage and still works.
	alice = d.browser()
	readJSON(t, d.signIn(alice, d.proxyURL("proxy-a", "/api/user"), "alice@example.com", "Alice Liddell", "admins,dev"), &user)
	for name := range d.procs {
		d.stop(name)
	}
	for name := range d.procs {
		d.start(name)
	}
	for name := range d.procs {
		d.waitReady(name)
	}
	alice.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, p := range []string{"proxy-a", "proxy-b"} {
		readJSON(t, get(t, alice, d.proxyURL(p, "/api/user")), &user)
		if user.Email != "alice@example.com" {
			t.Fatalf("after restart via %s: %+v", p, user)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
