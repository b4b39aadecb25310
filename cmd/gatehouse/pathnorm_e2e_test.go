package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// A signed-in user whom the policy allows /open but not /open/secret (an
// http_path deny) nor /open/admin (a route of its own) cannot reach either
// with another spelling of the path: the real binary, split into an
// authorize process and a proxy process that talk gRPC, against a Go
// upstream that decodes whatever it gets.
func TestPathSpellingsCannotReachPastPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a deployment")
	}
	e := &proxyEnv{procSet: newProcSet(t)}
	e.up = startUpstream(t)
	authnAddr, proxyAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	_, e.authnPort, _ = net.SplitHostPort(authnAddr)
	_, e.proxyPort, _ = net.SplitHostPort(proxyAddr)
	authURL := "http://authenticate.localhost:" + e.authnPort
	idpAddr := testutil.FreeAddr(t)
	e.idpURL = "http://" + idpAddr
	idp := testutil.StartProcess(t, "dev-idp", e.bin, []string{"dev-idp", "--address", idpAddr, "--issuer", e.idpURL,
		"--client-id", "gatehouse", "--client-secret", "idp-secret", "--redirect-uri", authURL + "/oauth2/callback"})
	var key [32]byte
	_, _ = rand.Read(key[:])
	e.config = configtest.New().
		Set("authenticate_service_url", authURL).
		Set("cookie_secret", base64.StdEncoding.EncodeToString(key[:])).
		IdP(e.idpURL, "idp-secret").
		Route(`
			from: http://paths.localhost
			prefix: /open/admin
			to: ` + e.up.srv.URL + `
			policy:
			  allow:
			    or:
			      - email:
			          is: nobody@example.com`).
		Route(`
			from: http://paths.localhost
			to: ` + e.up.srv.URL + `
			policy:
			  - allow:
			      or:
			        - domain:
			            is: example.com
			    deny:
			      or:
			        - http_path:
			            starts_with: /open/secret`).
		Write(t)
	dbAddr, azAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	e.add("authenticate+databroker", "SERVICES=authenticate,databroker", "ADDRESS="+authnAddr, "GRPC_ADDRESS="+dbAddr)
	e.add("authorize", "SERVICES=authorize", "GRPC_ADDRESS="+azAddr, "DATABROKER_SERVICE_URLS=http://"+dbAddr)
	e.add("proxy", "SERVICES=proxy", "ADDRESS="+proxyAddr, "AUTHORIZE_SERVICE_URLS=http://"+azAddr)
	names := []string{"authenticate+databroker", "authorize", "proxy"}
	for _, n := range names {
		e.start(n)
	}
	testutil.WaitHTTP(t, e.idpURL+"/.well-known/openid-configuration", 20*time.Second, idp)
	for _, n := range names {
		e.waitReady(n)
	}

	alice := e.client()
	resp := e.signIn(alice, e.url("paths.localhost", "/open/hello"), "alice@example.com", "Alice", "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after sign-in: %d %s", resp.StatusCode, body)
	}
	cookie := sessionCookie(t, alice, e.url("paths.localhost", "/"))
	host := "paths.localhost:" + e.proxyPort

	// get sends target byte for byte (http.Client would clean or re-escape
	// some of them) with alice's session.
	get := func(target string) (int, *echoed) {
		t.Helper()
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+e.proxyPort, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nCookie: _pomerium=%s\r\nAccept: text/html\r\nConnection: close\r\n\r\n", target, host, cookie)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, nil
		}
		var got echoed
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("GET %s: %v: %s", target, err, b)
		}
		return resp.StatusCode, &got
	}

	for _, c := range []struct {
		target string
		status int
		path   string // what the upstream got, for a 200
	}{
		{"/open/ok", 200, "/open/ok"},
		{"/open/secret", 403, ""},
		{"/open/%73ecret", 403, ""},
		{"/open//secret", 403, ""},
		{"/open/./secret", 403, ""},
		{"/open/x/../secret", 403, ""},
		{"/open/x/%2e%2e/secret", 403, ""},
		{`/open\secret`, 403, ""},
		{"/open%2fsecret", 400, ""},
		{"/open%2Fsecret", 400, ""},
		{"/open/%5Csecret", 400, ""},
		{"/open/secret%00", 400, ""},
		{"/open/admin", 403, ""},
		{"/open/%61dmin", 403, ""},
		{"//open//admin", 403, ""},
		{"/open/ok/../admin", 403, ""},
		{"/OPEN/secret", 200, "/OPEN/secret"}, // case is significant
		{"/open/ok/./x/%7Eme?q=/../secret", 200, "/open/ok/x/~me"},
		{"/open/%2e%2e/secret", 200, "/secret"},
	} {
		status, got := get(c.target)
		if status != c.status {
			t.Errorf("GET %s: %d, want %d", c.target, status, c.status)
			continue
		}
		if got != nil && got.RawPath != c.path {
			t.Errorf("GET %s: the upstream got %q, want %q", c.target, got.RawPath, c.path)
		}
		if got != nil && strings.Contains(c.target, "?") {
			if _, q, _ := strings.Cut(c.target, "?"); got.RawQuery != q {
				t.Errorf("GET %s: the upstream got query %q, want %q", c.target, got.RawQuery, q)
			}
		}
	}
}
