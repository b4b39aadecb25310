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
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/devcerts"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// TestTLSListener runs one gatehouse process (proxy, authorize and
// databroker) on a TLS listener with two certificates for different
// domains, from a CA generated for the test, plus the HTTP-to-HTTPS
// redirect listener; public routes lead to an upstream in the test.
func TestTLSListener(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gatehouse")
	}
	bin := testutil.Gatehouse(t)
	dir := t.TempDir()

	ca, err := devcerts.NewCA("gatehouse tls e2e test CA")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certA, keyA, err := ca.Issue("a.localhost")
	if err != nil {
		t.Fatal(err)
	}
	certB, keyB, err := ca.Issue("b.localhost", "*.b.localhost")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&echoed{Method: r.Method, Host: r.Host, Path: r.URL.Path, Header: r.Header})
	}))
	t.Cleanup(up.Close)

	addr, redirectAddr, grpcAddr, health := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	_, redirectPort, _ := net.SplitHostPort(redirectAddr)
	config := configtest.New().
		Delete("insecure_server").
		Set("services", "proxy,authorize,databroker").
		Set("address", addr).
		Set("grpc_address", grpcAddr).
		Set("health_check_addr", health).
		Set("http_redirect_addr", redirectAddr).
		Set("authenticate_service_url", "https://authenticate.a.localhost:"+port).
		Set("certificates", fmt.Sprintf(`
			- cert_file: %s
			  key_file: %s
			- cert_file: %s
			  key_file: %s`, write("a.pem", certA), write("a-key.pem", keyA), write("b.pem", certB), write("b-key.pem", keyB))).
		Route(`
			from: https://a.localhost
			to: ` + up.URL + `
			set_request_headers: {X-Route: a}
			allow_public_unauthenticated_access: true`).
		Route(`
			from: https://*.b.localhost
			to: ` + up.URL + `
			set_request_headers: {X-Route: wildcard-b}
			allow_public_unauthenticated_access: true`).
		Write(t)
	proc := testutil.StartProcess(t, "gatehouse", bin, []string{"--config", config})
	testutil.WaitHTTP(t, "http://"+health+"/readyz", 30*time.Second, proc)
	testutil.WaitTCP(t, addr, 10*time.Second)

	t.Run("SNISelectsCertificate", func(t *testing.T) {
		for _, c := range []struct {
			serverName string
			wantNames  []string
		}{
			{"a.localhost", []string{"a.localhost"}},
			{"b.localhost", []string{"b.localhost", "*.b.localhost"}},
			{"x.b.localhost", []string{"b.localhost", "*.b.localhost"}},
		} {
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{ServerName: c.serverName, RootCAs: roots}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn, err := d.DialContext(ctx, "tcp", addr)
			cancel()
			if err != nil {
				t.Errorf("%s: handshake (verifying against the test CA): %v", c.serverName, err)
				continue
			}
			leaf := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
			conn.Close()
			if !slices.Equal(leaf.DNSNames, c.wantNames) {
				t.Errorf("SNI %s: certificate for %v, want %v", c.serverName, leaf.DNSNames, c.wantNames)
			}
			if err := leaf.CheckSignatureFrom(ca.Cert); err != nil {
				t.Errorf("SNI %s: certificate not issued by the test CA: %v", c.serverName, err)
			}
		}
	})

	client := &http.Client{
		Transport: &http.Transport{
			DialContext:       loopbackDial,
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
		},
		Timeout: 10 * time.Second,
	}
	t.Cleanup(client.CloseIdleConnections)

	t.Run("HTTP2ThroughRoutes", func(t *testing.T) {
		for _, c := range []struct{ host, route string }{
			{"a.localhost", "a"},
			{"x.b.localhost", "wildcard-b"},
		} {
			resp, err := client.Get("https://" + c.host + ":" + port + "/hello")
			if err != nil {
				t.Fatalf("%s: %v", c.host, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d\n%s", c.host, resp.StatusCode, body)
			}
			if resp.Proto != "HTTP/2.0" || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
				t.Errorf("%s: protocol %s, ALPN %q; want HTTP/2.0 over h2", c.host, resp.Proto, resp.TLS.NegotiatedProtocol)
			}
			var got echoed
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%s: %v: %s", c.host, err, body)
			}
			if got.Header.Get("X-Route") != c.route || got.Path != "/hello" || got.Header.Get("X-Forwarded-Proto") != "https" {
				t.Errorf("%s: upstream got route %q path %q X-Forwarded-Proto %q", c.host,
					got.Header.Get("X-Route"), got.Path, got.Header.Get("X-Forwarded-Proto"))
			}
		}
		// The proxy's own endpoints answer over HTTP/2 too.
		resp, err := client.Get("https://a.localhost:" + port + "/ping")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/2.0" {
			t.Errorf("/ping: %d %s", resp.StatusCode, resp.Proto)
		}
	})

	t.Run("HTTPRedirectsToHTTPS", func(t *testing.T) {
		testutil.WaitTCP(t, redirectAddr, 10*time.Second)
		plain := &http.Client{
			Transport:     &http.Transport{DialContext: loopbackDial},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       10 * time.Second,
		}
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(method, "http://a.localhost:"+redirectPort+"/some/path?x=1&y=%2F", nil)
			resp, err := plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusPermanentRedirect {
				t.Fatalf("%s: %d, want 308", method, resp.StatusCode)
			}
			loc, err := resp.Location()
			if err != nil {
				t.Fatal(err)
			}
			// The HTTPS URL of the same host, path and query; the port is
			// HTTPS's default (the plain listener's port is never kept).
			if loc.Scheme != "https" || loc.Hostname() != "a.localhost" || loc.Port() == redirectPort ||
				loc.Path != "/some/path" || loc.RawQuery != "x=1&y=%2F" {
				t.Errorf("%s: Location %s, want https://a.localhost/some/path?x=1&y=%%2F", method, loc)
			}
		}
	})

	t.Run("HTTPRedirectKeepsEscapedPath", func(t *testing.T) {
		testutil.WaitTCP(t, redirectAddr, 10*time.Second)
		plain := &http.Client{
			Transport:     &http.Transport{DialContext: loopbackDial},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       10 * time.Second,
		}
		resp, err := plain.Get("http://a.localhost:" + redirectPort + "/files/a%2Fb%20c?x=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("%d without Location: %v", resp.StatusCode, err)
		}
		// %2F is not /: /files/a%2Fb names one resource, /files/a/b another.
		if resp.StatusCode != http.StatusPermanentRedirect || loc.EscapedPath() != "/files/a%2Fb%20c" {
			t.Errorf("BUG: cmd/gatehouse/http.go redirectToHTTPS rebuilds the URL from r.URL.Path without RawPath, "+
				"so the escaped path /files/a%%2Fb%%20c is redirected to %d %s (path %s); it must keep the escaped path as received",
				resp.StatusCode, loc, loc.EscapedPath())
		}
	})
}
