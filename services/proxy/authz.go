package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
)

// Context extension keys of a CheckRequest (see CONTRACTS.md).
const (
	extRouteID  = extauthz.ContextRouteID
	extInternal = extauthz.ContextInternal
)

// checkBuf is a CheckRequest with every nested message it needs, wired
// once and reused through checkPool: building a fresh one per request
// costs eight allocations plus two maps that grow from empty. A buffer
// goes back to the pool only after Check returned without error, when the
// client (gRPC marshalling, or an in-process authorize) is done with it.
type checkBuf struct {
	req      authv3.CheckRequest
	attrs    authv3.AttributeContext
	source   authv3.AttributeContext_Peer
	addr     corev3.Address
	sockAddr corev3.Address_SocketAddress
	sock     corev3.SocketAddress
	request  authv3.AttributeContext_Request
	http     authv3.AttributeContext_HttpRequest
	// key is the buffer of the request's reuse key (reuseKey).
	key []byte
}

var checkPool = sync.Pool{New: func() any {
	b := &checkBuf{}
	b.req.Attributes = &b.attrs
	b.attrs.Source = &b.source
	b.source.Address = &b.addr
	b.addr.Address = &b.sockAddr
	b.sockAddr.SocketAddress = &b.sock
	b.attrs.Request = &b.request
	b.request.Http = &b.http
	b.attrs.ContextExtensions = make(map[string]string, 2)
	b.http.Headers = make(map[string]string, 16)
	return b
}}

// maxPooledHeaders bounds the header map a pooled buffer keeps; one
// request with very many headers should not pin a big map forever.
const maxPooledHeaders = 64

// maxPooledKey likewise bounds the reuse key buffer a pooled buffer keeps.
const maxPooledKey = 16 << 10

// checkInput is what a Check says about a request.
type checkInput struct {
	r          *http.Request
	requestID  string
	scheme     string
	clientIP   string
	credential string // X-Pomerium-Authorization, already stripped from r
	routeID    string
	internal   bool
	// extraHeaders are request headers the route's set_request_headers
	// read (${pomerium.request.headers.X}), canonical.
	extraHeaders []string
	// clientCert is the TLS client certificate chain, URL-encoded PEM
	// (clientCertificate); "" without one.
	clientCert string
}

// checkHeaders are the request headers a Check carries: the credentials
// (cookie, authorization), what tells a browser from an API client
// (accept, content-type, x-requested-with), CORS preflight's and the
// request id.
var checkHeaders = func() []struct{ canonical, lower string } {
	names := []string{"Cookie", "Authorization", "Accept", "Content-Type", "X-Requested-With",
		"Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers", "X-Request-Id", "User-Agent"}
	out := make([]struct{ canonical, lower string }, len(names))
	for i, n := range names {
		out[i].canonical, out[i].lower = n, strings.ToLower(n)
	}
	return out
}()

func (b *checkBuf) fill(in *checkInput) {
	r := in.r
	h := &b.http
	h.Id = in.requestID
	h.Method = r.Method
	h.Host = r.Host
	h.Scheme = in.scheme
	// The normal path the route was matched on and the upstream gets
	// (requestPath), so authorize's http_path sees that same string.
	if r.URL.RawQuery == "" {
		h.Path = requestPath(r) // no allocation
	} else {
		h.Path = requestPath(r) + "?" + r.URL.RawQuery
	}
	h.Protocol = r.Proto
	// Only the headers authorize reads travel, as Envoy's ext_authz
	// allowed_headers would send them: the rest of a request's headers
	// would be marshalled and parsed on every Check for nothing.
	for _, k := range checkHeaders {
		vs := r.Header[k.canonical]
		if len(vs) == 0 {
			continue
		}
		v := vs[0]
		if len(vs) > 1 {
			sep := ","
			if k.canonical == "Cookie" {
				sep = "; "
			}
			v = strings.Join(vs, sep)
		}
		h.Headers[k.lower] = v
	}
	for _, k := range in.extraHeaders {
		if vs := r.Header[k]; len(vs) > 0 {
			h.Headers[strings.ToLower(k)] = strings.Join(vs, ",")
		}
	}
	if in.credential != "" {
		h.Headers["x-pomerium-authorization"] = in.credential
	}
	b.sock.Address = in.clientIP
	// Envoy's attributes.source.certificate: from the TLS stack only,
	// never from a request header.
	b.source.Certificate = in.clientCert
	b.attrs.ContextExtensions[extRouteID] = in.routeID
	if in.internal {
		b.attrs.ContextExtensions[extInternal] = "true"
	}
}

func (b *checkBuf) release() {
	if len(b.http.Headers) > maxPooledHeaders {
		return // let it go; the pool makes a new one
	}
	clear(b.http.Headers)
	clear(b.attrs.ContextExtensions)
	b.http.Id, b.http.Method, b.http.Host, b.http.Path, b.http.Scheme, b.http.Protocol = "", "", "", "", "", ""
	b.sock.Address = ""
	b.source.Certificate = ""
	if cap(b.key) > maxPooledKey {
		b.key = nil
	}
	checkPool.Put(b)
}

// check sends one Check for the request, or answers it with an allowed
// answer authorize gave for the identical request when that may be
// reused (reuseSet). The error is a transport error (authorize
// unreachable, too slow): the caller fails closed.
func (s *Service) check(ctx context.Context, in *checkInput) (*authv3.CheckResponse, error) {
	b := checkPool.Get().(*checkBuf)
	b.fill(in)
	start := time.Now()
	key, gen, resp := s.reused(b, in, start)
	if resp != nil {
		b.release()
		return resp, nil
	}
	var err error
	defer func() { s.metrics.check.Observe(time.Since(start).Seconds()) }()
	if s.checkTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.checkTimeout)
		resp, err = s.authz.Check(ctx, &b.req)
		cancel()
	} else {
		resp, err = s.authz.Check(ctx, &b.req)
	}
	if err != nil {
		return nil, err // b is dropped, not pooled: the client may still hold it
	}
	if key != nil && resp != nil {
		s.reuse.put(key, gen, resp, start)
	}
	b.release()
	if resp == nil {
		return nil, errNoResponse // fail closed, never allow on nothing
	}
	return resp, nil
}

var errNoResponse = errors.New("authorize returned no response")

// allowed reports whether a CheckResponse lets the request through.
func allowed(resp *authv3.CheckResponse) bool {
	return codes.Code(resp.GetStatus().GetCode()) == codes.OK
}

// applyHeaderOption applies one header of an ext_authz response to h,
// following its append action.
func applyHeaderOption(h http.Header, o *corev3.HeaderValueOption, key string) {
	hv := o.GetHeader()
	v := hv.GetValue()
	if v == "" && len(hv.GetRawValue()) > 0 {
		v = string(hv.GetRawValue())
	}
	action := o.GetAppendAction()
	if a := o.GetAppend(); a != nil { // the deprecated form wins when present, as in Envoy
		action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		if a.GetValue() {
			action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
		}
	}
	switch action {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		h[key] = append(h[key], v)
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		if _, ok := h[key]; !ok {
			h[key] = []string{v}
		}
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		if _, ok := h[key]; ok {
			setHeader(h, key, v)
		}
	default: // OVERWRITE_IF_EXISTS_OR_ADD
		setHeader(h, key, v)
	}
}

// writeDenied writes a denied (or error) response from authorize to the
// client as it is: status, headers and body.
func writeDenied(w http.ResponseWriter, r *http.Request, d *authv3.DeniedHttpResponse, requestID string) {
	if d == nil {
		writeError(w, r, http.StatusForbidden, msgForbidden, requestID)
		return
	}
	h := w.Header()
	for _, o := range d.GetHeaders() {
		key := canonicalHeaderName(o.GetHeader().GetKey())
		if key == "" {
			continue
		}
		applyHeaderOption(h, o, key)
	}
	status := int(d.GetStatus().GetCode())
	if status < 200 || status > 599 {
		status = http.StatusForbidden // Envoy's default for a denial without a status
	}
	if d.GetBody() != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	if _, ok := h["Cache-Control"]; !ok {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, d.GetBody())
}
