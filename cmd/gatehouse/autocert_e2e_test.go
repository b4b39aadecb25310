package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/devcerts"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// TestAutocertPebble runs gatehouse with autocert against Let's Encrypt's
// test ACME server, Pebble, as a real process on loopback: Pebble resolves
// every name to 127.0.0.1 through a DNS server in the test, and validates
// HTTP-01 and TLS-ALPN-01 against gatehouse's own listeners. It checks
// issue and serve, a hot-reloaded route getting its certificate, renewal
// (Pebble's certificates here live 24 seconds) and a failed renewal that
// keeps the old certificate in service and says why in the log.
func TestAutocertPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("starts pebble and gatehouse")
	}
	bin, pebble := testutil.Gatehouse(t), testutil.Pebble(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// DNS: every A question is 127.0.0.1, nothing else exists.
	dnsAddr := testutil.FreeAddr(t)
	answer := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})
	for _, network := range []string{"udp", "tcp"} { // Pebble asks over TCP
		srv := &dns.Server{Addr: dnsAddr, Net: network, Handler: answer}
		up := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(up) }
		go func() { _ = srv.ListenAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
		select {
		case <-up:
		case <-time.After(10 * time.Second):
			t.Fatalf("dns server (%s) did not start", network)
		}
	}

	// Pebble, with a TLS certificate of our own for its API.
	apiCA, err := devcerts.NewCA("pebble API CA")
	if err != nil {
		t.Fatal(err)
	}
	apiCert, apiKey, err := apiCA.Issue("localhost")
	if err != nil {
		t.Fatal(err)
	}
	apiCAFile := write("pebble-api-ca.pem", pemCert(apiCA.Cert))
	addr, redirectAddr, grpcAddr, health := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	_, redirectPort, _ := net.SplitHostPort(redirectAddr)
	pebbleAddr, pebbleMgmt := testutil.FreeAddr(t), testutil.FreeAddr(t)
	_, pebblePort, _ := net.SplitHostPort(pebbleAddr)
	_, mgmtPort, _ := net.SplitHostPort(pebbleMgmt)
	pebbleCfg := write("pebble.json", []byte(fmt.Sprintf(`{"pebble": {
		"listenAddress": %q, "managementListenAddress": %q,
		"certificate": %q, "privateKey": %q,
		"httpPort": %s, "tlsPort": %s, "ocspResponderURL": "",
		"externalAccountBindingRequired": false,
		"retryAfter": {"authz": 1, "order": 1},
		"profiles": {"default": {"description": "short-lived for renewal", "validityPeriod": 24}}
	}}`, pebbleAddr, pebbleMgmt, write("pebble.pem", apiCert), write("pebble-key.pem", apiKey), redirectPort, port)))
	startPebble := func() *testutil.Process {
		p := testutil.StartProcess(t, "pebble", pebble, []string{"-config", pebbleCfg, "-dnsserver", dnsAddr},
			"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
		testutil.WaitTCP(t, pebbleAddr, 30*time.Second)
		return p
	}
	peb := startPebble()

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&echoed{Method: r.Method, Host: r.Host, Path: r.URL.Path, Header: r.Header})
	}))
	t.Cleanup(up.Close)

	builder := configtest.New().
		Delete("insecure_server").
		Set("log_level", "info").
		Set("services", "proxy,authorize,databroker").
		Set("address", addr).
		Set("grpc_address", grpcAddr).
		Set("health_check_addr", health).
		Set("http_redirect_addr", redirectAddr).
		Set("authenticate_service_url", "https://authenticate.gatehouse.test:"+port).
		Set("autocert", "true").
		Set("autocert_ca", "https://localhost:"+pebblePort+"/dir").
		Set("autocert_trusted_ca_file", apiCAFile).
		Set("autocert_email", "ops@gatehouse.test").
		Set("autocert_dir", filepath.Join(dir, "autocert")).
		Route(`
			from: https://app.gatehouse.test
			to: ` + up.URL + `
			allow_public_unauthenticated_access: true`)
	cfgPath := builder.Write(t)
	proc := testutil.StartProcess(t, "gatehouse", bin, []string{"--config", cfgPath}, "GATEHOUSE_AUTOCERT_RENEW_CHECK_INTERVAL=1s")
	testutil.WaitHTTP(t, "http://"+health+"/readyz", 30*time.Second, proc)

	// Pebble's roots, to verify what gatehouse serves.
	mgmt := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: poolOf(apiCA.Cert)}}}
	roots := x509.NewCertPool()
	func() {
		resp, err := mgmt.Get("https://localhost:" + mgmtPort + "/roots/0")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !roots.AppendCertsFromPEM(b) {
			t.Fatalf("pebble root: %s", b)
		}
	}()
	served := func(host string) (*x509.Certificate, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d := &tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: roots}}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
	}
	waitCert := func(host string, timeout time.Duration, ok func(*x509.Certificate) bool) *x509.Certificate {
		var got *x509.Certificate
		testutil.WaitFor(t, timeout, "a certificate from Pebble for "+host, func() error {
			c, err := served(host)
			if err != nil {
				return err
			}
			if !ok(c) {
				return fmt.Errorf("still serving serial %s", c.SerialNumber)
			}
			got = c
			return nil
		})
		return got
	}
	anyCert := func(*x509.Certificate) bool { return true }

	first := waitCert("app.gatehouse.test", 60*time.Second, anyCert)
	t.Run("Serve", func(t *testing.T) {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			TLSClientConfig: &tls.Config{RootCAs: roots},
		}}
		defer client.CloseIdleConnections()
		resp, err := client.Get("https://app.gatehouse.test:" + port + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("NewRouteOnReload", func(t *testing.T) {
		builder.Route(`
			from: https://new.gatehouse.test
			to: ` + up.URL + `
			allow_public_unauthenticated_access: true`)
		if err := os.WriteFile(cfgPath, []byte(builder.YAML()), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(proc.Pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitCert("new.gatehouse.test", 60*time.Second, anyCert)
	})
	t.Run("Renew", func(t *testing.T) {
		waitCert("app.gatehouse.test", 60*time.Second, func(c *x509.Certificate) bool { return c.SerialNumber.Cmp(first.SerialNumber) != 0 })
	})
	t.Run("FailedRenewalKeepsCertificate", func(t *testing.T) {
		current, err := served("app.gatehouse.test")
		if err != nil {
			t.Fatal(err)
		}
		peb.Kill()
		testutil.WaitFor(t, 60*time.Second, "a log line saying why the renewal failed", func() bool {
			return strings.Contains(proc.Output(), "certificate order failed")
		})
		still, err := served("app.gatehouse.test")
		if err != nil {
			t.Fatalf("no certificate served after a failed renewal: %v", err)
		}
		if still.SerialNumber.Cmp(current.SerialNumber) != 0 && still.NotAfter.Before(current.NotAfter) {
			t.Errorf("serving serial %s, want the last one %s", still.SerialNumber, current.SerialNumber)
		}
		for _, line := range strings.Split(proc.Output(), "\n") {
			if strings.Contains(line, "certificate order failed") {
				if !strings.Contains(line, `"error"`) {
					t.Errorf("the failure does not say why: %s", line)
				}
				break
			}
		}
	})
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func poolOf(cs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cs {
		p.AddCert(c)
	}
	return p
}
