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
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/clientcert"
	"github.com/gatehouse/gatehouse/pkg/clientcert/clientcerttest"
	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/devcerts"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// TestDownstreamMTLS runs gatehouse (proxy, authorize, databroker) with
// downstream_mtls under each enforcement mode, and calls it with client
// certificates made here: valid, expired, revoked by the CRL, from
// another CA, with a SAN that match_subject_alt_names refuses, and none
// (a browser-less client).
func TestDownstreamMTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gatehouse")
	}
	bin := testutil.Gatehouse(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	serverCA, err := devcerts.NewCA("gatehouse mtls e2e server CA")
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err := serverCA.Issue("mtls.localhost", "pinned.localhost")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)

	ca := clientcerttest.NewCA(t, "gatehouse mtls e2e client CA")
	clients := map[string]*clientcerttest.Client{
		"valid":    ca.Issue(t, clientcerttest.ClientOptions{CommonName: "ann", Emails: []string{"ann@example.com"}}),
		"expired":  ca.Issue(t, clientcerttest.ClientOptions{Emails: []string{"old@example.com"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}),
		"revoked":  ca.Issue(t, clientcerttest.ClientOptions{Emails: []string{"gone@example.com"}}),
		"wrongCA":  clientcerttest.NewCA(t, "another CA").Issue(t, clientcerttest.ClientOptions{Emails: []string{"ann@example.com"}}),
		"otherSAN": ca.Issue(t, clientcerttest.ClientOptions{Emails: []string{"bob@elsewhere.org"}}),
	}
	caFile, crlFile := write("clients-ca.pem", ca.PEM()), write("clients.crl", ca.CRL(t, clients["revoked"].Cert))
	validFP := clientcert.Fingerprint(clients["valid"].Cert)

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&echoed{Method: r.Method, Host: r.Host, Path: r.URL.Path, Header: r.Header})
	}))
	t.Cleanup(up.Close)

	start := func(t *testing.T, enforcement string) (port string, proc *testutil.Process) {
		addr, grpcAddr, health := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
		_, port, _ = net.SplitHostPort(addr)
		cfg := configtest.New().
			Delete("insecure_server").
			Set("log_level", "info").
			Set("services", "proxy,authorize,databroker").
			Set("address", addr).
			Set("grpc_address", grpcAddr).
			Set("health_check_addr", health).
			Set("authenticate_service_url", "https://authenticate.localhost:"+port).
			Set("certificate_file", write("server.pem", srvCert)).
			Set("certificate_key_file", write("server-key.pem", srvKey)).
			Set("downstream_mtls", fmt.Sprintf(`
				ca_file: %s
				crl_file: %s
				enforcement: %s
				match_subject_alt_names:
				  - email: '.*@example\.com'`, caFile, crlFile, enforcement)).
			Route(`
				from: https://mtls.localhost
				to: ` + up.URL + `
				set_request_headers: {X-Client-Fingerprint: '${pomerium.client_cert_fingerprint}'}
				allow_public_unauthenticated_access: true`).
			Route(`
				from: https://pinned.localhost
				to: ` + up.URL + `
				policy:
				  allow:
				    or:
				      - client_certificate: {fingerprint: ` + validFP + `}`).
			Write(t)
		proc = testutil.StartProcess(t, "gatehouse", bin, []string{"--config", cfg})
		testutil.WaitHTTP(t, "http://"+health+"/readyz", 30*time.Second, proc)
		testutil.WaitTCP(t, addr, 10*time.Second)
		return port, proc
	}
	client := func(t *testing.T, name string) *http.Client {
		tc := &tls.Config{RootCAs: roots}
		if c := clients[name]; c != nil {
			// Presented whatever CAs the server names (Go's client, like
			// browsers, would hold back one from another CA).
			cert := c.TLS()
			tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		}
		c := &http.Client{
			Transport: &http.Transport{DialContext: loopbackDial, TLSClientConfig: tc, ForceAttemptHTTP2: true},
			Timeout:   10 * time.Second,
		}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	type answer struct {
		status int
		body   string
		got    echoed
		err    error
	}
	get := func(t *testing.T, name, url string) answer {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Accept", "application/json")
		// A client's own value never reaches the upstream.
		req.Header.Set("X-Client-Fingerprint", "forged")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := client(t, name).Do(req.WithContext(ctx))
		if err != nil {
			return answer{err: err}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		a := answer{status: resp.StatusCode, body: string(b)}
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &a.got); err != nil {
				t.Fatalf("%s: %v: %s", name, err, b)
			}
		}
		return a
	}
	invalid := []string{"expired", "revoked", "wrongCA", "otherSAN"}

	t.Run("PolicyWithDefaultDeny", func(t *testing.T) {
		port, proc := start(t, "policy_with_default_deny")
		u := "https://mtls.localhost:" + port + "/"
		a := get(t, "valid", u)
		if a.status != http.StatusOK {
			t.Fatalf("valid certificate: %d %v %s", a.status, a.err, a.body)
		}
		if got := a.got.Header.Values("X-Client-Fingerprint"); len(got) != 1 || got[0] != validFP {
			t.Errorf("X-Client-Fingerprint %q, want [%s]", got, validFP)
		}
		if a := get(t, "", u); a.status != 495 || !strings.Contains(a.body, "client_certificate_required") {
			t.Errorf("no certificate: %d %v %s; want 495 client_certificate_required", a.status, a.err, a.body)
		}
		for _, name := range invalid {
			if a := get(t, name, u); a.status != 495 || !strings.Contains(a.body, "invalid_client_certificate") {
				t.Errorf("%s: %d %v %s; want 495 invalid_client_certificate", name, a.status, a.err, a.body)
			}
		}
		// The log says why.
		testutil.WaitFor(t, 5*time.Second, "decision log with the reasons", func() bool {
			out := proc.Output()
			return strings.Contains(out, "certificate has expired") && strings.Contains(out, "revoked by the CRL") &&
				strings.Contains(out, "unknown authority") && strings.Contains(out, "match_subject_alt_names")
		})
	})

	t.Run("Policy", func(t *testing.T) {
		port, _ := start(t, "policy")
		// No default deny: the public route admits every client.
		for _, name := range append([]string{"valid", ""}, invalid...) {
			if a := get(t, name, "https://mtls.localhost:"+port+"/"); a.status != http.StatusOK {
				t.Errorf("%q on the public route: %d %v %s", name, a.status, a.err, a.body)
			} else if fp := a.got.Header.Get("X-Client-Fingerprint"); (name == "valid") != (fp == validFP) || fp == "forged" {
				t.Errorf("%q: X-Client-Fingerprint %q", name, fp)
			}
		}
		// client_certificate admits the pinned certificate only.
		if a := get(t, "valid", "https://pinned.localhost:"+port+"/"); a.status != http.StatusOK {
			t.Errorf("pinned certificate: %d %v %s", a.status, a.err, a.body)
		}
		for _, name := range append([]string{""}, invalid...) {
			if a := get(t, name, "https://pinned.localhost:"+port+"/"); a.status != http.StatusForbidden {
				t.Errorf("%q on the pinned route: %d %v %s; want 403", name, a.status, a.err, a.body)
			}
		}
	})

	t.Run("RejectConnection", func(t *testing.T) {
		port, _ := start(t, "reject_connection")
		u := "https://mtls.localhost:" + port + "/"
		if a := get(t, "valid", u); a.status != http.StatusOK {
			t.Errorf("valid certificate: %d %v %s", a.status, a.err, a.body)
		}
		for _, name := range append([]string{""}, invalid...) {
			if a := get(t, name, u); a.err == nil {
				t.Errorf("%q: %d, want the TLS handshake refused", name, a.status)
			}
		}
	})
}
