package deployments

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The edge container's stand-in: what edge.conf asks of nginx (a stream
// server that reads the TLS ClientHello's SNI name with ssl_preread and
// passes the connection through, untouched, to the backend its map
// names), done in Go. Backends are resolved for every connection, as the
// nginx resolver re-asks Docker's DNS.

// edgeConf is the part of an nginx.conf the stand-in follows.
type edgeConf struct {
	listen         string            // listen address, ":443"
	backends       map[string]string // SNI name → host:port
	fallback       string            // the map's default
	connectTimeout time.Duration     // proxy_connect_timeout (nginx default 60s)
}

var (
	nginxComment  = regexp.MustCompile(`#[^\n]*`)
	nginxStream   = regexp.MustCompile(`\bstream\s*\{`)
	nginxMap      = regexp.MustCompile(`\bmap\s+\$ssl_preread_server_name\s+\$(\w+)\s*\{([^}]*)\}`)
	nginxEntry    = regexp.MustCompile(`(\S+)\s+(\S+)\s*;`)
	nginxListen   = regexp.MustCompile(`\blisten\s+([^;\s]+)\s*;`)
	nginxPreread  = regexp.MustCompile(`\bssl_preread\s+on\s*;`)
	nginxPass     = regexp.MustCompile(`\bproxy_pass\s+\$(\w+)\s*;`)
	nginxConnectT = regexp.MustCompile(`\bproxy_connect_timeout\s+(\d+)(ms|s)?\s*;`)
)

// parseEdgeConf reads an nginx.conf of edge.conf's shape; anything else is
// an error, so a changed edge.conf cannot pass with a stand-in that does
// something else.
func parseEdgeConf(data []byte) (edgeConf, error) {
	src := nginxComment.ReplaceAllString(string(data), "")
	c := edgeConf{backends: map[string]string{}, connectTimeout: 60 * time.Second}
	if !nginxStream.MatchString(src) || !nginxPreread.MatchString(src) {
		return c, errors.New("no stream server with ssl_preread on")
	}
	m := nginxMap.FindStringSubmatch(src)
	if m == nil {
		return c, errors.New("no map of $ssl_preread_server_name")
	}
	if p := nginxPass.FindStringSubmatch(src); p == nil || p[1] != m[1] {
		return c, fmt.Errorf("proxy_pass does not use the map's $%s", m[1])
	}
	for _, e := range nginxEntry.FindAllStringSubmatch(m[2], -1) {
		if e[1] == "default" {
			c.fallback = e[2]
		} else {
			c.backends[strings.ToLower(e[1])] = e[2]
		}
	}
	l := nginxListen.FindStringSubmatch(src)
	if l == nil {
		return c, errors.New("no listen")
	}
	c.listen = l[1]
	if _, err := strconv.Atoi(c.listen); err == nil {
		c.listen = ":" + c.listen // nginx: every address
	}
	if t := nginxConnectT.FindStringSubmatch(src); t != nil {
		n, _ := strconv.Atoi(t[1])
		if t[2] == "ms" {
			c.connectTimeout = time.Duration(n) * time.Millisecond
		} else {
			c.connectTimeout = time.Duration(n) * time.Second
		}
	}
	return c, nil
}

// backend is where a connection with this SNI name goes ("" if nowhere).
func (c edgeConf) backend(sni string) string {
	if b, ok := c.backends[strings.ToLower(sni)]; ok {
		return b
	}
	return c.fallback
}

func runEdge(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	path := fs.String("config", "", "nginx.conf")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	conf, err := parseEdgeConf(data)
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	lis, err := net.Listen("tcp", conf.listen)
	if err != nil {
		return err
	}
	fmt.Printf("edge: listening on %s, routes %v, default %s\n", lis.Addr(), conf.backends, conf.fallback)
	go func() { <-ctx.Done(); lis.Close() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := lis.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			conf.pass(ctx, c)
		}()
	}
}

// pass reads the ClientHello, connects to the backend its SNI name maps
// to, replays what it read and copies both ways until both sides close.
func (c edgeConf) pass(ctx context.Context, client net.Conn) {
	defer client.Close()
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hello bytes.Buffer
	sni := peekSNI(io.TeeReader(client, &hello))
	_ = client.SetReadDeadline(time.Time{})
	if hello.Len() == 0 {
		return // closed before saying anything (a port check)
	}
	backend := c.backend(sni)
	if backend == "" {
		fmt.Printf("edge: no backend for %q\n", sni)
		return
	}
	fmt.Printf("edge: %s %q → %s\n", client.RemoteAddr(), sni, backend)
	d := net.Dialer{Timeout: c.connectTimeout}
	up, err := d.DialContext(ctx, "tcp", backend)
	if err != nil {
		fmt.Printf("edge: %q → %s: %v\n", sni, backend, err)
		return
	}
	defer up.Close()
	if _, err := up.Write(hello.Bytes()); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, client)
	go pipe(client, up)
	<-done
	<-done
}

var errHelloRead = errors.New("client hello read")

// peekSNI reads a TLS ClientHello from r and returns its server name (""
// without one, or when r holds no ClientHello: nginx's
// $ssl_preread_server_name is empty then too).
func peekSNI(r io.Reader) string {
	var sni string
	_ = tls.Server(readOnlyConn{r}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sni = h.ServerName
			return nil, errHelloRead
		},
	}).Handshake()
	return sni
}

// readOnlyConn lets crypto/tls parse a ClientHello without answering it.
type readOnlyConn struct{ r io.Reader }

func (c readOnlyConn) Read(p []byte) (int, error)     { return c.r.Read(p) }
func (readOnlyConn) Write([]byte) (int, error)        { return 0, io.ErrClosedPipe }
func (readOnlyConn) Close() error                     { return nil }
func (readOnlyConn) LocalAddr() net.Addr              { return nil }
func (readOnlyConn) RemoteAddr() net.Addr             { return nil }
func (readOnlyConn) SetDeadline(time.Time) error      { return nil }
func (readOnlyConn) SetReadDeadline(time.Time) error  { return nil }
func (readOnlyConn) SetWriteDeadline(time.Time) error { return nil }

func tlsConfig(roots *x509.CertPool) *tls.Config { return &tls.Config{RootCAs: roots} }

// TestComposeEdgeStandIn checks the edge stand-in reads edge.conf as nginx
// does: the authenticate host to authenticate, everything else to the
// proxy, on port 443.
func TestComposeEdgeStandIn(t *testing.T) {
	conf, err := parseEdgeConf(readFile(t, "compose/edge.conf"))
	if err != nil {
		t.Fatalf("edge.conf: %v", err)
	}
	if conf.listen != ":443" {
		t.Errorf("listen %q", conf.listen)
	}
	for sni, want := range map[string]string{
		"authenticate.localhost.pomerium.io": "authenticate:8443",
		"AUTHENTICATE.localhost.pomerium.io": "authenticate:8443",
		"grafana.localhost.pomerium.io":      "proxy:8443",
		"":                                   "proxy:8443",
	} {
		if got := conf.backend(sni); got != want {
			t.Errorf("backend(%q) = %q, want %q", sni, got, want)
		}
	}
	if conf.connectTimeout != 5*time.Second {
		t.Errorf("proxy_connect_timeout %v", conf.connectTimeout)
	}
	for _, bad := range []string{"events {}", "stream { server { listen 443; proxy_pass x:1; } }"} {
		if _, err := parseEdgeConf([]byte(bad)); err == nil {
			t.Errorf("parseEdgeConf(%q) succeeded", bad)
		}
	}

	// The SNI name of a real ClientHello.
	a, b := net.Pipe()
	go func() {
		_ = tls.Client(a, &tls.Config{ServerName: "grafana.localhost.pomerium.io"}).Handshake()
	}()
	if got := peekSNI(b); got != "grafana.localhost.pomerium.io" {
		t.Errorf("peekSNI = %q", got)
	}
	a.Close()
	b.Close()
}
