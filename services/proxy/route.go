package proxy

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
	"github.com/gatehouse/gatehouse/pkg/tracing"
)

// bufferPool hands ReverseProxy 32 KiB copy buffers, so that streaming a
// body does not allocate one per request. It pools array pointers: a
// []byte put into a sync.Pool would allocate its slice header each time.
type bufferPool struct{ p sync.Pool }

const copyBufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != copyBufferSize {
		return
	}
	b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
}

var sharedBuffers = &bufferPool{}

// headerKV is a header to set, with its name in canonical form.
type headerKV struct{ key, value string }

// route is one configured route compiled for forwarding. It is immutable
// once built (the balancer has its own lock).
type route struct {
	cfg          *config.Route
	metrics      *routeMetrics
	proxy        *httputil.ReverseProxy
	bal          *balancer
	passIdentity bool
	setRequest   []headerKV // the static set_request_headers
	removeReq    []string
	// templateHeaders are the request headers the set_request_headers
	// with ${pomerium.request.headers.X} read, for the Check: authorize
	// writes those headers (with the session's values too).
	templateHeaders []string
	// protected are the names, besides X-Pomerium-*, that gatehouse may
	// write on this route's requests: never taken from the client.
	protected headerSet
	removeSet headerSet // removeReq, for folded matching
	// claimHeaders are the jwt_claims_headers (canonical name → claim),
	// identity headers dropped when passIdentity is off.
	claimHeaders map[string]string
	// upgrades are the Upgrade protocols the route tunnels, lower-case.
	upgrades    []string
	respHTTP    []headerKV // response headers for plain-HTTP clients
	respHTTPS   []headerKV // ... and for HTTPS clients (with HSTS)
	rewriteSub  string     // regex_rewrite_substitution in Go's $n syntax
	hostPathSub string     // host_path_regex_rewrite_substitution, likewise
	idleTimeout time.Duration
	hops        int
	// kubernetes marks a Kubernetes API route (its Impersonate-* headers
	// come from authorize only).
	kubernetes bool
	// skipXFFAppend is skip_xff_append: the peer is not added to
	// X-Forwarded-For.
	skipXFFAppend bool
	cookieName    string
	logger        *slog.Logger
}

// Pomerium's default security response headers.
var defaultResponseHeaders = map[string]string{
	"X-Frame-Options":           "SAMEORIGIN",
	"X-Xss-Protection":          "1; mode=block",
	"Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
}

// disableKey in set_response_headers turns the default headers off.
const disableKey = "disable"

func hasDisable(m map[string]string) bool {
	for k := range m {
		if strings.EqualFold(k, disableKey) {
			return true
		}
	}
	return false
}

// responseHeaders computes the headers a route sets on every response:
// the global set_response_headers (Pomerium's defaults when unset), then
// the route's; "disable" in either drops the global ones. HSTS, when it
// comes from the defaults, is only sent to HTTPS clients.
func responseHeaders(cfg *config.Config, r *config.Route) (plain, secure []headerKV) {
	global := map[string]string(cfg.SetResponseHeaders)
	fromDefaults := len(global) == 0
	if fromDefaults {
		global = defaultResponseHeaders
	}
	if hasDisable(global) || hasDisable(r.SetResponseHeaders) {
		global = nil
	}
	merged := map[string]string{}
	for k, v := range global {
		merged[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	for k, v := range r.SetResponseHeaders {
		if strings.EqualFold(k, disableKey) {
			continue
		}
		merged[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	for k, v := range merged {
		secure = append(secure, headerKV{k, v})
		if k == "Strict-Transport-Security" && fromDefaults {
			if _, routeSet := r.SetResponseHeaders[k]; !routeSet {
				continue
			}
		}
		plain = append(plain, headerKV{k, v})
	}
	return plain, secure
}

// envoySubstitution turns Envoy's regex_rewrite_substitution syntax (\1
// for a group) into Go's (${1}); a literal $ is escaped.
func envoySubstitution(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			b.WriteString("${" + s[i+1:j] + "}")
			i = j - 1
		case c == '$':
			b.WriteString("$$")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (s *Service) newRoute(cfg *config.Config, r *config.Route, claimHeaders map[string]string) (*route, transportKey, error) {
	key := routeTransportKey(cfg, r)
	tr, err := s.transports.get(cfg, r)
	if err != nil {
		return nil, key, err
	}
	rt := s.baseRoute(cfg, r, claimHeaders)
	rt.bal = newBalancer(r.ToURLs, r.LB())
	rt.rewriteSub = envoySubstitution(r.RegexRewriteSubstitution)
	rt.hostPathSub = envoySubstitution(r.HostPathRegexRewriteSubstitution)
	rt.skipXFFAppend = cfg.SkipXFFAppend
	rt.kubernetes = r.IsForKubernetes()
	rt.metrics = s.metrics.route(r.ID)
	if r.IdleTimeout != nil {
		rt.idleTimeout = r.IdleTimeout.Std()
	}
	for k, t := range r.HeaderTemplates() {
		if t.Static() {
			rt.setRequest = append(rt.setRequest, headerKV{textproto.CanonicalMIMEHeaderKey(k), t.Literal()})
			continue
		}
		rt.templateHeaders = append(rt.templateHeaders, t.RequestHeaders()...)
	}
	for _, k := range r.RemoveRequestHeaders {
		rt.removeReq = append(rt.removeReq, textproto.CanonicalMIMEHeaderKey(k))
	}
	rt.removeSet = newHeaderSet(rt.removeReq...)
	rt.respHTTP, rt.respHTTPS = responseHeaders(cfg, r)
	rt.proxy = &httputil.ReverseProxy{
		Rewrite: rt.rewrite,
		// With tracing on, a client span per upstream request that sends
		// the trace to the upstream as traceparent (replacing any the
		// client sent), so the upstream's own traces join it.
		Transport: tracing.Transport(&retryTransport{rt: tr, bal: rt.bal, metrics: rt.metrics}, s.tracerProvider, "upstream"),
		// 0, not -1: ReverseProxy already flushes every write of a
		// streaming response (SSE, or no Content-Length), and a flush per
		// write would cost a second write(2) on every small response.
		FlushInterval:  0,
		BufferPool:     sharedBuffers,
		ModifyResponse: rt.modifyResponse,
		ErrorHandler:   rt.errorHandler,
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	return rt, key, nil
}

// rewrite builds the upstream request (ReverseProxy calls it after
// removing hop-by-hop and X-Forwarded-* headers from pr.Out, so that what
// it writes no client header can remove).
func (rt *route) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	rt.setUpstreamHeaders(in, out)
	up := rt.bal.pickFor(rt.hashKey(in))
	out.URL.Scheme = up.url.Scheme
	out.URL.Host = up.url.Host
	rt.rewritePath(in, out, up.url)
	out.Host = rt.upstreamHost(in)
	// One backing array for the three headers (capacity-limited slices,
	// so an append elsewhere cannot clobber a neighbour).
	var xff string
	if rt.skipXFFAppend {
		_, xff = clientIP(in, rt.hops) // what the trusted proxies wrote, without the peer
	} else {
		xff = forwardedFor(in, rt.hops)
	}
	vals := [...]string{xff, requestScheme(in, rt.hops), in.Host}
	fwd := vals[:]
	h := out.Header
	if xff != "" {
		h["X-Forwarded-For"] = fwd[0:1:1]
	}
	h["X-Forwarded-Proto"] = fwd[1:2:2]
	h["X-Forwarded-Host"] = fwd[2:3:3]
}

// hashKey is what ring_hash and maglev hash for a request: its session
// handle (cookie or Authorization), else the client's IP. Other policies
// hash nothing.
func (rt *route) hashKey(in *http.Request) string {
	switch rt.bal.policy {
	case config.LBRingHash, config.LBMaglev:
	default:
		return ""
	}
	if tok, _ := sessionhandle.FromHeaders(in.Header.Get("Authorization"), "", strings.Join(in.Header["Cookie"], "; "), rt.cookieName); tok != "" {
		return tok
	}
	ip, _ := clientIP(in, rt.hops)
	return ip
}

// upstreamHost returns the Host header the upstream gets ("" for the
// upstream URL's host), by Pomerium's precedence: host_rewrite,
// host_rewrite_header, host_path_regex_rewrite_pattern,
// preserve_host_header, else the upstream's own name.
func (rt *route) upstreamHost(in *http.Request) string {
	r := rt.cfg
	switch {
	case r.HostRewrite != "":
		return r.HostRewrite
	case r.HostRewriteHeader != "":
		// Envoy's host_rewrite_header: an empty or missing header leaves
		// the client's Host.
		if v := in.Header.Get(r.HostRewriteHeader); v != "" {
			return v
		}
		return in.Host
	case r.HostPathRE != nil:
		// On the normal path the route was matched and authorized on,
		// without the query, as Envoy's host_rewrite_path_regex.
		return r.HostPathRE.ReplaceAllString(requestPath(in), rt.hostPathSub)
	case r.PreserveHostHeader:
		return in.Host
	}
	return ""
}

// rewritePath applies regex_rewrite or prefix_rewrite and the upstream's
// base path. It works on the request's normal path (requestPath), the one
// string the route was matched and authorized on, escaped, as Envoy does,
// so encoded characters (%3B, or a kept %2F) pass unchanged; the common
// case (no rewrite, no base path) leaves the URL as ReverseProxy copied it.
func (rt *route) rewritePath(in, out *http.Request, up *url.URL) {
	base := up.EscapedPath()
	if base == "/" {
		base = ""
	}
	r := rt.cfg
	if r.RewriteRE == nil && r.PrefixRewrite == "" && base == "" {
		return
	}
	p := requestPath(in)
	switch {
	case r.RewriteRE != nil:
		p = r.RewriteRE.ReplaceAllString(p, rt.rewriteSub)
	case r.PrefixRewrite != "":
		prefix := r.Prefix
		if prefix == "" {
			prefix = "/" // Envoy's implicit prefix match
		}
		if strings.HasPrefix(p, prefix) {
			rest := p[len(prefix):]
			if strings.HasSuffix(r.PrefixRewrite, "/") && strings.HasPrefix(rest, "/") {
				rest = rest[1:]
			}
			p = r.PrefixRewrite + rest
		}
	}
	if base != "" {
		switch {
		case strings.HasSuffix(base, "/") && strings.HasPrefix(p, "/"):
			p = base + p[1:]
		case !strings.HasSuffix(base, "/") && !strings.HasPrefix(p, "/"):
			p = base + "/" + p
		default:
			p = base + p
		}
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		dec = p
	}
	out.URL.Path = dec
	// Always the escaped form as built: without it net/url would re-escape
	// sub-delims such as '!' and send another spelling upstream.
	out.URL.RawPath = p
}

func (rt *route) modifyResponse(resp *http.Response) error {
	hs := rt.respHTTP
	if resp.Request != nil && resp.Request.Header.Get("X-Forwarded-Proto") == "https" {
		hs = rt.respHTTPS
	}
	for _, kv := range hs {
		setHeader(resp.Header, kv.key, kv.value)
	}
	rt.rewriteResponseHeaders(resp.Header)
	if rt.idleTimeout > 0 && resp.StatusCode != http.StatusSwitchingProtocols && resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = newIdleBody(resp.Body, rt.idleTimeout)
	}
	return nil
}

// rewriteResponseHeaders applies rewrite_response_headers to a response
// on its way to the client: a header whose value starts with an entry's
// prefix gets the entry's value in place of the prefix (several values
// are read as one, comma-joined, as Envoy's Lua filter reads them).
func (rt *route) rewriteResponseHeaders(h http.Header) {
	for _, rw := range rt.cfg.RewriteResponseHeaders {
		key := textproto.CanonicalMIMEHeaderKey(rw.Header)
		vs := h[key]
		if len(vs) == 0 {
			continue
		}
		v := strings.Join(vs, ",")
		if rest, ok := strings.CutPrefix(v, rw.Prefix); ok {
			h[key] = []string{rw.Value + rest}
		}
	}
}

// errorHandler turns a failed upstream exchange into a 502 or 504 page.
// req is the outbound request.
func (rt *route) errorHandler(w http.ResponseWriter, req *http.Request, err error) {
	reqID := req.Header.Get(headerRequestID)
	if ctxErr := req.Context().Err(); ctxErr != nil && errors.Is(err, context.Canceled) {
		// The client went away; there is nobody to answer.
		rt.logger.Debug("client went away", "route", rt.cfg.ID, "request_id", reqID)
		return
	}
	status, msg := http.StatusBadGateway, msgUpstreamDown
	var ne net.Error
	switch {
	case errors.Is(err, errIdleTimeout),
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout() && !isDialError(err):
		status, msg = http.StatusGatewayTimeout, msgUpstreamTimeout
	case isDialError(err):
		rt.bal.markDown(req.URL.Host)
	}
	switch {
	case status == http.StatusGatewayTimeout:
		rt.metrics.upstreamError(upstreamErrTimeout)
	case isDialError(err):
		rt.metrics.upstreamError(upstreamErrUnreachable)
	default:
		rt.metrics.upstreamError(upstreamErrOther)
	}
	rt.logger.Warn("upstream request failed", "route", rt.cfg.ID, "request_id", reqID,
		"upstream", req.URL.Host, "status", status, "error", err.Error())
	for _, kv := range rt.respHeaders(req) {
		setHeader(w.Header(), kv.key, kv.value)
	}
	writeError(w, req, status, msg, reqID)
}

func (rt *route) respHeaders(out *http.Request) []headerKV {
	if out.Header.Get("X-Forwarded-Proto") == "https" {
		return rt.respHTTPS
	}
	return rt.respHTTP
}

// retryTransport sends a request to another upstream of the route when
// the chosen one refused the connection (nothing was sent, so even a
// non-idempotent request is safe to send elsewhere) and the request has
// no body to replay.
type retryTransport struct {
	rt      http.RoundTripper
	bal     *balancer
	metrics *routeMetrics
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	var resp *http.Response
	var err error
	if t.bal.policy == config.LBLeastRequest {
		resp, err = t.countActive(req)
	} else {
		resp, err = t.roundTrip(req)
	}
	if err == nil {
		t.metrics.upstream.Observe(time.Since(start).Seconds())
	}
	return resp, err
}

// countActive sends req counting it as in flight to its upstream until
// its response body is closed (least_request reads the count).
func (t *retryTransport) countActive(req *http.Request) (*http.Response, error) {
	u := t.bal.byHost(req.URL.Host)
	if u == nil {
		return t.roundTrip(req)
	}
	u.active.Add(1)
	resp, err := t.roundTrip(req)
	if err != nil || resp.Body == nil {
		u.active.Add(-1)
		return resp, err
	}
	resp.Body = &activeBody{ReadCloser: resp.Body, u: u}
	return resp, nil
}

// activeBody ends an upstream's in-flight request when closed.
type activeBody struct {
	io.ReadCloser
	u    *upstream
	once sync.Once
}

func (b *activeBody) Close() error {
	b.once.Do(func() { b.u.active.Add(-1) })
	return b.ReadCloser.Close()
}

func (t *retryTransport) roundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err == nil || len(t.bal.ups) < 2 || !isDialError(err) {
		return resp, err
	}
	t.bal.markDown(req.URL.Host)
	if req.Body != nil && req.Body != http.NoBody {
		return resp, err
	}
	next := t.bal.pick()
	if next.url.Host == req.URL.Host || next.url.Scheme != req.URL.Scheme || !t.bal.samePaths {
		return resp, err
	}
	r2 := *req
	u := *req.URL
	u.Host = next.url.Host
	r2.URL = &u
	return t.rt.RoundTrip(&r2)
}

var errIdleTimeout = errors.New("upstream idle timeout")

// idleBody closes a response body that has produced no data for the
// route's idle_timeout (a hung upstream stream), so the client's
// connection is not held forever. Each Read resets the timer.
type idleBody struct {
	rc    io.ReadCloser
	d     time.Duration
	timer *time.Timer
	mu    sync.Mutex
	fired bool
}

func newIdleBody(rc io.ReadCloser, d time.Duration) *idleBody {
	b := &idleBody{rc: rc, d: d}
	b.timer = time.AfterFunc(d, func() {
		b.mu.Lock()
		b.fired = true
		b.mu.Unlock()
		_ = rc.Close()
	})
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.timer.Reset(b.d)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		fired := b.fired
		b.mu.Unlock()
		if fired {
			return n, errIdleTimeout
		}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	return b.rc.Close()
}
