package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/devcerts"
)

// tls_upstream_server_name is the name sent and verified for an https
// upstream, and wins over tls_server_name, as in Pomerium;
// tls_upstream_allow_renegotiation lets the upstream renegotiate.
func TestTLSUpstreamServerName(t *testing.T) {
	ca, err := devcerts.NewCA("gatehouse test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err := ca.Issue("upstream.internal")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "sni=%s", r.TLS.ServerName)
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	up.StartTLS()
	t.Cleanup(up.Close)
	caOpt := "tls_custom_ca: " + b64(ca.CertPEM)
	routes := routeYAML("id: up", "from: http://up.test", "to: "+up.URL, caOpt, "tls_upstream_server_name: upstream.internal") +
		routeYAML("id: both", "from: http://both.test", "to: "+up.URL, caOpt, "tls_server_name: other.internal", "tls_upstream_server_name: upstream.internal") +
		routeYAML("id: wrong", "from: http://wrong.test", "to: "+up.URL, caOpt, "tls_server_name: upstream.internal", "tls_upstream_server_name: other.internal") +
		routeYAML("id: reneg", "from: http://reneg.test", "to: "+up.URL, caOpt, "tls_upstream_server_name: upstream.internal", "tls_upstream_allow_renegotiation: true")
	h := newHarness(t, parseConfig(t, "", routes), newFakeAuthz(allowAll()))
	for host, want := range map[string]int{"up.test": 200, "both.test": 200, "wrong.test": 502, "reneg.test": 200} {
		resp, body := h.get(t, host, "/")
		if resp.StatusCode != want || (want == 200 && body != "sni=upstream.internal") {
			t.Errorf("%s: %d %q, want %d", host, resp.StatusCode, body, want)
		}
	}
	var reneg int
	for k, tr := range h.svc.transports.m {
		if tr.TLSClientConfig.Renegotiation == tls.RenegotiateFreelyAsClient {
			reneg++
			if !k.renegotiate {
				t.Error("renegotiation allowed on a transport whose key does not say so")
			}
		}
	}
	if reneg != 1 {
		t.Errorf("%d transports allow renegotiation, want 1", reneg)
	}
}

// to: h2c://host:port speaks HTTP/2 without TLS to the upstream (gRPC
// servers), trailers included.
func TestH2CUpstream(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = io.WriteString(w, r.Proto)
		w.(http.Flusher).Flush() // streamed, as gRPC answers: no Content-Length
		w.Header().Set("Grpc-Status", "0")
	}))
	up.Config.Protocols = new(http.Protocols)
	up.Config.Protocols.SetUnencryptedHTTP2(true)
	up.Start()
	t.Cleanup(up.Close)
	to := "to: h2c://" + up.Listener.Addr().String()
	h := newHarness(t, parseConfig(t, "", routeYAML("id: grpc", "from: http://grpc.test", to)), newFakeAuthz(allowAll()))
	resp, body := h.get(t, "grpc.test", "/pkg.Service/Method")
	if resp.StatusCode != 200 || body != "HTTP/2.0" {
		t.Fatalf("%d %q, want 200 HTTP/2.0", resp.StatusCode, body)
	}
	if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
		t.Errorf("trailer Grpc-Status %q, want 0", got)
	}
}

// The upstream's Host by Pomerium's precedence: host_rewrite,
// host_rewrite_header, host_path_regex_rewrite_pattern,
// preserve_host_header, else the upstream's name.
func TestHostRewrites(t *testing.T) {
	up := newUpstream(t, "app")
	routes := routeYAML("id: hdr", "from: http://hdr.test", "to: "+up.URL, "host_rewrite_header: X-Upstream-Host") +
		routeYAML("id: both", "from: http://both.test", "to: "+up.URL, "host_rewrite: fixed.internal", "host_rewrite_header: X-Upstream-Host", "preserve_host_header: true") +
		routeYAML("id: path", "from: http://path.test", "to: "+up.URL, `host_path_regex_rewrite_pattern: "^/(.+)/.+$"`, `host_path_regex_rewrite_substitution: \1.internal`, "preserve_host_header: true") +
		routeYAML("id: preserve", "from: http://preserve.test", "to: "+up.URL, "preserve_host_header: true")
	h := newHarness(t, parseConfig(t, "", routes), newFakeAuthz(allowAll()))
	for _, tc := range []struct {
		host, path, header, want string
	}{
		{"hdr.test", "/", "svc.internal", "svc.internal"},
		{"hdr.test", "/", "", "hdr.test"}, // no header: the client's Host stays
		{"both.test", "/", "svc.internal", "fixed.internal"},
		{"path.test", "/tenant/x", "", "tenant.internal"},
		{"path.test", "/tenant//x?q=/a/b", "", "tenant.internal"}, // the normal path, without the query
		{"preserve.test", "/", "", "preserve.test"},
	} {
		var hdr []string
		if tc.header != "" {
			hdr = []string{"X-Upstream-Host", tc.header}
		}
		if resp, _ := h.get(t, tc.host, tc.path, hdr...); resp.StatusCode != 200 {
			t.Fatalf("%s%s: %d", tc.host, tc.path, resp.StatusCode)
		}
		if got := up.last(t).Host; got != tc.want {
			t.Errorf("%s%s (header %q): upstream Host %q, want %q", tc.host, tc.path, tc.header, got, tc.want)
		}
	}
}

// rewrite_response_headers: a value starting with prefix gets value in
// its place; other values and headers pass unchanged.
func TestRewriteResponseHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://backend:8080"+r.URL.Path)
		w.Header().Set("Link", "<http://backend:8080/style.css>")
		w.Header().Set("X-Other", "http://backend:8080/")
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(up.Close)
	routes := routeYAML("id: rw", "from: http://rw.test", "to: "+up.URL,
		`rewrite_response_headers: [{header: location, prefix: "http://backend:8080/", value: "https://rw.test/app/"}, {header: Link, prefix: "", value: "x"}]`)
	h := newHarness(t, parseConfig(t, "", routes), newFakeAuthz(allowAll()))
	resp, _ := h.get(t, "rw.test", "/one")
	if got := resp.Header.Get("Location"); got != "https://rw.test/app/one" {
		t.Errorf("Location %q", got)
	}
	if got := resp.Header.Get("Link"); got != "x<http://backend:8080/style.css>" {
		t.Errorf("Link %q", got)
	}
	if got := resp.Header.Get("X-Other"); got != "http://backend:8080/" {
		t.Errorf("X-Other %q", got)
	}
	resp, _ = h.get(t, "rw.test", "/")
	if got := resp.Header.Get("Location"); got != "https://rw.test/app/" {
		t.Errorf("Location %q", got)
	}
}
