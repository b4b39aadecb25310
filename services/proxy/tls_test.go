package proxy

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/devcerts"
)

func b64(p []byte) string { return base64.StdEncoding.EncodeToString(p) }

func TestTLSUpstreams(t *testing.T) {
	ca, err := devcerts.NewCA("gatehouse test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err := ca.Issue("upstream.internal", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cliCert, cliKey, err := ca.Issue("proxy-client.internal")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := "none"
		if len(r.TLS.PeerCertificates) > 0 {
			client = r.TLS.PeerCertificates[0].DNSNames[0]
		}
		fmt.Fprintf(w, "%s client=%s", r.Proto, client)
	}))
	up.EnableHTTP2 = true
	up.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	up.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequestClientCert}
	up.StartTLS()
	t.Cleanup(up.Close)
	to := "to: " + up.URL // https://127.0.0.1:port

	routes := routeYAML("id: ca", "from: http://ca.test", to, "tls_custom_ca: "+b64(ca.CertPEM)) +
		routeYAML("id: name", "from: http://name.test", to, "tls_custom_ca: "+b64(ca.CertPEM), "tls_server_name: upstream.internal") +
		routeYAML("id: wrongname", "from: http://wrongname.test", to, "tls_custom_ca: "+b64(ca.CertPEM), "tls_server_name: other.internal") +
		routeYAML("id: noca", "from: http://noca.test", to) +
		routeYAML("id: skip", "from: http://skip.test", to, "tls_skip_verify: true") +
		routeYAML("id: mtls", "from: http://mtls.test", to, "tls_custom_ca: "+b64(ca.CertPEM),
			"tls_client_cert: "+b64(cliCert), "tls_client_key: "+b64(cliKey))
	h := newHarness(t, parseConfig(t, "", routes), newFakeAuthz(allowAll()))

	tests := []struct {
		host   string
		status int
		body   string
	}{
		{"ca.test", 200, "HTTP/2.0 client=none"},
		{"name.test", 200, "HTTP/2.0 client=none"},
		{"wrongname.test", 502, ""},
		{"noca.test", 502, ""},
		{"skip.test", 200, "HTTP/2.0 client=none"},
		{"mtls.test", 200, "HTTP/2.0 client=proxy-client.internal"},
	}
	for _, tt := range tests {
		resp, body := h.get(t, tt.host, "/")
		if resp.StatusCode != tt.status || (tt.body != "" && body != tt.body) {
			t.Errorf("%s: %d %q, want %d %q", tt.host, resp.StatusCode, body, tt.status, tt.body)
		}
	}
	// Routes with the same TLS settings share one transport (one pool).
	if n := len(h.svc.transports.m); n != 6 {
		t.Errorf("%d transports for 6 distinct TLS settings", n)
	}
}

func TestTransportsShared(t *testing.T) {
	up := newUpstream(t, "app")
	routes := routeYAML("id: a", "from: http://a.test", "to: "+up.URL) +
		routeYAML("id: b", "from: http://b.test", "to: "+up.URL) +
		routeYAML("id: c", "from: http://c.test", "to: "+up.URL, "timeout: 5s")
	h := newHarness(t, parseConfig(t, "", routes), newFakeAuthz(allowAll()))
	if n := len(h.svc.transports.m); n != 2 {
		t.Errorf("%d transports, want 2 (default timeout and 5s)", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first chunk\n")
		w.(http.Flusher).Flush()
		select { // then hang
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(upstream.Close)
	h := newHarness(t, parseConfig(t, "", routeYAML("id: idle", "from: http://idle.test", "to: "+upstream.URL, "idle_timeout: 200ms")), newFakeAuthz(allowAll()))
	start := time.Now()
	resp := h.do(t, http.MethodGet, "idle.test", "/", nil)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "first chunk") {
		t.Errorf("body %q (%v)", body, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("hung stream held for %v despite idle_timeout 200ms", d)
	}
}
