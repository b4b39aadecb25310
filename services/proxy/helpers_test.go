package proxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse/gatehouse/pkg/config"
)

const (
	testSharedSecret = "93pDpOHbb0pg+nEAHTZS1COZMt/53VNFXDp/hkyGHCg=" // 32 bytes
	testCookieSecret = "HmVs8hCfDZ2PW46zvbj4j7k2jZhVb3Tuq0Rxsvtxl8I=" // 32 bytes
	testAuthURL      = "https://auth.example.test"
)

// parseConfig builds a proxy-only configuration around the routes YAML
// (a list, indented by two spaces) and any extra top-level options.
func parseConfig(t testing.TB, extra, routes string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(configYAML(extra, routes)), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	return cfg
}

func configYAML(extra, routes string) string {
	return `
services: proxy
insecure_server: true
authorize_service_url: http://127.0.0.1:1
shared_secret: ` + testSharedSecret + `
cookie_secret: ` + testCookieSecret + `
authenticate_service_url: ` + testAuthURL + `
` + extra + `
routes:
` + routes
}

// decideFunc answers a Check in the fake authorizer.
type decideFunc func(req *authv3.CheckRequest) (*authv3.CheckResponse, error)

// fakeAuthz is an authv3.AuthorizationClient that answers from a function
// and records (copies of) the requests it got.
type fakeAuthz struct {
	mu     sync.Mutex
	decide decideFunc
	reqs   []*authv3.CheckRequest
	calls  atomic.Int64
	record bool
	// hang makes Check wait for its context to end (an unreachable authorize).
	hang atomic.Bool
}

func newFakeAuthz(d decideFunc) *fakeAuthz { return &fakeAuthz{decide: d, record: true} }

func (f *fakeAuthz) Check(ctx context.Context, req *authv3.CheckRequest, _ ...grpc.CallOption) (*authv3.CheckResponse, error) {
	f.calls.Add(1)
	f.mu.Lock()
	d := f.decide
	if f.record {
		// The proxy reuses its request buffers: keep a copy.
		f.reqs = append(f.reqs, proto.Clone(req).(*authv3.CheckRequest))
	}
	f.mu.Unlock()
	if f.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return d(req)
}

func (f *fakeAuthz) set(d decideFunc) {
	f.mu.Lock()
	f.decide = d
	f.mu.Unlock()
}

func (f *fakeAuthz) last(t testing.TB) *authv3.CheckRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("no Check was sent")
	}
	return f.reqs[len(f.reqs)-1]
}

var errUnavailable = errors.New("authorize unavailable")

func hvo(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// okResponse allows with the given headers (pairs of key, value).
func okResponse(remove []string, kv ...string) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{HeadersToRemove: remove}
	for i := 0; i+1 < len(kv); i += 2 {
		ok.Headers = append(ok.Headers, hvo(kv[i], kv[i+1]))
	}
	return &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

func deniedResponse(code int, body string, kv ...string) *authv3.CheckResponse {
	d := &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode(code)}, Body: body}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Headers = append(d.Headers, hvo(kv[i], kv[i+1]))
	}
	c := codes.PermissionDenied
	if code == 401 || code == 302 {
		c = codes.Unauthenticated
	}
	return &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(c)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: d},
	}
}

func allowAll(kv ...string) decideFunc {
	return func(*authv3.CheckRequest) (*authv3.CheckResponse, error) { return okResponse(nil, kv...), nil }
}

// testJWT returns an unsigned-looking compact JWS with the claims (the
// proxy does not verify what authorize gives it).
func testJWT(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc.EncodeToString(b) + "." + enc.EncodeToString([]byte("sig"))
}

// seen is what an upstream received.
type seen struct {
	Method, Host, Path, RawPath, Query string
	Header                             http.Header
	Body                               int64
	URI                                string // the request target as it arrived
}

// recordingUpstream is a loopback upstream that records each request and
// answers 200 with a small body naming itself.
type recordingUpstream struct {
	*httptest.Server
	name string
	mu   sync.Mutex
	got  []seen
}

func newUpstream(t testing.TB, name string) *recordingUpstream {
	u := &recordingUpstream{name: name}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.got = append(u.got, seen{r.Method, r.Host, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Header.Clone(), n, r.RequestURI})
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Upstream", name)
		_, _ = io.WriteString(w, "hello from "+name)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *recordingUpstream) last(t testing.TB) seen {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.got) == 0 {
		t.Fatalf("upstream %s got no request", u.name)
	}
	return u.got[len(u.got)-1]
}

func (u *recordingUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.got)
}

// harness is a proxy service behind a loopback HTTP server.
type harness struct {
	svc   *Service
	src   config.Source
	authz *fakeAuthz
	front *httptest.Server
}

func newHarness(t testing.TB, cfg *config.Config, authz *fakeAuthz, opts ...func(*Options)) *harness {
	t.Helper()
	return newHarnessWithSource(t, config.NewStaticSource(cfg), authz, opts...)
}

func newHarnessWithSource(t testing.TB, src config.Source, authz *fakeAuthz, opts ...func(*Options)) *harness {
	t.Helper()
	o := Options{
		Source: src, Authorizer: authz, CheckTimeout: 2 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	}
	for _, f := range opts {
		f(&o)
	}
	svc, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	front := httptest.NewServer(svc.Handler())
	t.Cleanup(front.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &harness{svc: svc, src: src, authz: authz, front: front}
}

// noRedirect is a client that returns redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// do sends a request for host+path through the proxy.
func (h *harness) do(t testing.TB, method, host, path string, body io.Reader, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, h.front.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	return resp
}

// get sends a GET and returns the response with its body read.
func (h *harness) get(t testing.TB, host, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	resp := h.do(t, http.MethodGet, host, path, nil, hdr...)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

func routeYAML(fields ...string) string {
	return "  - {" + strings.Join(fields, ", ") + "}\n"
}
