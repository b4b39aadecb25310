package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// switchingUpstream answers 101 to any Upgrade it receives, naming the
// same protocol, as a careless upstream (or one speaking h2c) would; a
// request without Upgrade gets 200 with "upgrade=" and what it saw. On
// /always-101 it switches protocols even when nobody asked.
func switchingUpstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := r.Header.Get("Upgrade")
		if up == "" && r.URL.Path != "/always-101" {
			fmt.Fprintf(w, "upgrade=%s connection=%s settings=%s", up, r.Header.Get("Connection"), r.Header.Get("Http2-Settings"))
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n")
		if up != "" {
			fmt.Fprintf(brw, "Upgrade: %s\r\n", up)
		}
		fmt.Fprintf(brw, "\r\n")
		_ = brw.Flush()
		// Echo one line inside the tunnel, so a test can tell it is open.
		line, _ := brw.ReadString('\n')
		fmt.Fprintf(brw, "tunnel: %s", line)
		_ = brw.Flush()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// rawRequest sends a request over a new connection to the front and
// returns the response's status and body (or the first tunnelled line
// after a 101).
func rawRequest(t *testing.T, front, host, path string, hdr ...string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(front, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, host)
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		_, _ = io.WriteString(conn, "ping\n")
		line, _ := br.ReadString('\n')
		return resp.StatusCode, line
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// Only the upgrades a route allows are tunnelled: websocket with
// allow_websockets, spdy/3.1 with allow_spdy. h2c is dropped from the
// request, which goes on as plain HTTP/1.1 (Envoy strips h2c upgrades);
// any other upgrade is refused with 403 (Envoy's answer to an upgrade
// type it has no upgrade_configs entry for).
func TestOnlyAllowedUpgradesAreTunnelled(t *testing.T) {
	up := switchingUpstream(t)
	routes := routeYAML("id: ws", "from: http://ws.test", "to: "+up.URL, "allow_websockets: true") +
		routeYAML("id: spdy", "from: http://spdy.test", "to: "+up.URL, "allow_spdy: true") +
		routeYAML("id: both", "from: http://both.test", "to: "+up.URL, "allow_websockets: true", "allow_spdy: true") +
		routeYAML("id: none", "from: http://none.test", "to: "+up.URL)
	authz := newFakeAuthz(allowAll())
	h := newHarness(t, parseConfig(t, "", routes), authz)

	upgrade := func(proto string) []string { return []string{"Connection", "Upgrade", "Upgrade", proto} }
	for _, tc := range []struct {
		host   string
		hdr    []string
		status int
		body   string // prefix
	}{
		{"ws.test", upgrade("websocket"), 101, "tunnel: ping"},
		{"ws.test", upgrade("WebSocket"), 101, "tunnel: ping"},
		{"ws.test", []string{"Connection", "keep-alive, Upgrade", "Upgrade", "websocket"}, 101, "tunnel: ping"},
		{"ws.test", upgrade("h2c"), 200, "upgrade= connection= settings="},
		{"ws.test", []string{"Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"}, 200, "upgrade= connection= settings="},
		{"ws.test", upgrade("foo"), 403, ""},
		{"ws.test", upgrade("spdy/3.1"), 403, ""},
		{"ws.test", upgrade("websocket, foo"), 403, ""},
		{"ws.test", upgrade("websocket/13"), 403, ""},
		{"ws.test", []string{"Connection", "Upgrade", "Upgrade", "websocket", "Upgrade", "foo"}, 403, ""},
		{"spdy.test", upgrade("spdy/3.1"), 101, "tunnel: ping"},
		{"spdy.test", upgrade("SPDY/3.1"), 101, "tunnel: ping"},
		{"spdy.test", upgrade("websocket"), 403, ""},
		{"spdy.test", upgrade("spdy/3"), 403, ""},
		{"both.test", upgrade("websocket"), 101, "tunnel: ping"},
		{"both.test", upgrade("spdy/3.1"), 101, "tunnel: ping"},
		{"both.test", upgrade("h2c"), 200, "upgrade= "},
		{"both.test", upgrade("foo"), 403, ""},
		{"none.test", upgrade("websocket"), 403, ""},
		{"none.test", upgrade("h2c"), 200, "upgrade= "},
		{"none.test", upgrade("foo"), 403, ""},
		// Upgrade without Connection: Upgrade asks for nothing; it is a
		// hop-by-hop header and goes no further.
		{"ws.test", []string{"Upgrade", "foo"}, 200, "upgrade= "},
	} {
		t.Run(tc.host+" "+strings.Join(tc.hdr, " "), func(t *testing.T) {
			calls := authz.calls.Load()
			status, body := rawRequest(t, h.front.URL, tc.host, "/u", tc.hdr...)
			if status != tc.status || !strings.HasPrefix(body, tc.body) {
				t.Fatalf("got %d %q, want %d %q", status, body, tc.status, tc.body)
			}
			if status == 101 && authz.calls.Load() == calls {
				t.Errorf("tunnel opened without a Check")
			}
		})
	}
}

// An upstream that switches protocols for a request that asked for no
// upgrade gets no tunnel: the client sees 502, never 101.
func TestUnrequestedSwitchingProtocolsRefused(t *testing.T) {
	up := switchingUpstream(t)
	h := newHarness(t, parseConfig(t, "", routeYAML("id: ws", "from: http://ws.test", "to: "+up.URL, "allow_websockets: true")), newFakeAuthz(allowAll()))
	status, body := rawRequest(t, h.front.URL, "ws.test", "/always-101")
	if status != http.StatusBadGateway {
		t.Fatalf("got %d %q, want 502", status, body)
	}
}
