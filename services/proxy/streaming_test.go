package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gatehouse/gatehouse/pkg/config"
)

func TestWebsocketEcho(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(echo.Close)
	routes := routeYAML("id: ws", "from: http://ws.test", "to: "+echo.URL, "allow_websockets: true", "timeout: 1s") +
		routeYAML("id: nows", "from: http://nows.test", "to: "+echo.URL)
	h := newHarness(t, parseConfig(t, "", routes), newFakeAuthz(allowAll()))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func(host string) (*websocket.Conn, *http.Response, error) {
		return websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.front.URL, "http")+"/socket", &websocket.DialOptions{
			Host: host,
		})
	}
	c, _, err := dial("ws.test")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	for i := range 3 {
		msg := fmt.Sprintf("message %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write: %v", err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if string(got) != "echo: "+msg {
			t.Fatalf("got %q", got)
		}
		if i == 1 {
			// Longer than the route's 1s timeout: upgraded connections
			// have no timeout.
			time.Sleep(1200 * time.Millisecond)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")

	_, resp, err := dial("nows.test")
	if err == nil {
		t.Fatal("upgrade allowed on a route without allow_websockets")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("refused upgrade: %v %v", resp, err)
	}
}

func TestSSEStreamsEventByEvent(t *testing.T) {
	next := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next: // the test read this event before we send the next
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Second):
				return
			}
		}
	}))
	t.Cleanup(upstream.Close)
	h := newHarness(t, parseConfig(t, "", routeYAML("id: sse", "from: http://sse.test", "to: "+upstream.URL, "timeout: 1s")), newFakeAuthz(allowAll()))

	resp := h.do(t, http.MethodGet, "sse.test", "/events", nil, "Accept", "text/event-stream")
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := fmt.Sprintf("data: event %d\n", i); line != want {
			t.Fatalf("got %q, want %q", line, want)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// Slower than the route timeout: it only bounds the wait for
			// response headers, not the stream.
			time.Sleep(1200 * time.Millisecond)
		}
		next <- struct{}{}
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestLargeUploadStreamsWithBoundedMemory(t *testing.T) {
	up := newUpstream(t, "sink")
	h := newHarness(t, parseConfig(t, "", routeYAML("id: up", "from: http://up.test", "to: "+up.URL)), newFakeAuthz(allowAll()))
	const size = 100 << 20

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp := h.do(t, http.MethodPost, "up.test", "/upload", io.LimitReader(zeros{}, size), "Content-Type", "application/octet-stream")
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := up.last(t).Body; got != size {
		t.Fatalf("upstream got %d bytes, want %d", got, size)
	}
	// Client, proxy and upstream all run in this process: everything they
	// allocated for the 100 MB must stay far below its size.
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB while streaming %d MiB; heap in use %d -> %d KiB", allocated>>10, size>>20, before.HeapInuse>>10, after.HeapInuse>>10)
	if allocated > 16<<20 {
		t.Errorf("allocated %d MiB for a %d MiB upload: the body is buffered", allocated>>20, size>>20)
	}
}

func TestUpstreamDownAndSlow(t *testing.T) {
	// A port with nothing listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := l.Addr().String()
	l.Close()

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })

	routes := routeYAML("id: down", "from: http://down.test", "to: http://"+downAddr) +
		routeYAML("id: slow", "from: http://slow.test", "to: "+slow.URL, "timeout: 200ms")
	h := newHarness(t, parseConfig(t, "", routes), newFakeAuthz(allowAll()))

	resp, body := h.get(t, "down.test", "/")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "could not be reached") {
		t.Errorf("down: %d %q", resp.StatusCode, body)
	}
	start := time.Now()
	resp, body = h.get(t, "slow.test", "/", "Accept", "application/json")
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, `"status":504`) {
		t.Errorf("slow: %d %q", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("504 took %v", d)
	}
}

func TestWeightedRoundRobin(t *testing.T) {
	a, b, c := newUpstream(t, "a"), newUpstream(t, "b"), newUpstream(t, "c")
	route := routeYAML("id: lb", "from: http://lb.test", fmt.Sprintf("to: [%q, %q, %q]", a.URL+",3", b.URL+",2", c.URL))
	h := newHarness(t, parseConfig(t, "", route), newFakeAuthz(allowAll()))
	for range 60 {
		if resp, _ := h.get(t, "lb.test", "/"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if a.count() != 30 || b.count() != 20 || c.count() != 10 {
		t.Errorf("distribution a=%d b=%d c=%d, want 30/20/10", a.count(), b.count(), c.count())
	}
}

func TestBalancerSmoothAndSkipsDown(t *testing.T) {
	cfg := parseConfig(t, "", routeYAML("id: lb", "from: http://lb.test", `to: ["http://a:1,5", "http://b:1", "http://c:1"]`))
	bal := newBalancer(cfg.Routes[0].ToURLs, config.LBRoundRobin)
	var seq strings.Builder
	for range 7 {
		seq.WriteString(bal.pick().url.Hostname())
	}
	if seq.String() != "aabacaa" {
		t.Errorf("sequence %q, want nginx's smooth aabacaa", seq.String())
	}
	bal.markDown("a:1")
	for range 10 {
		if u := bal.pick(); u.url.Hostname() == "a" {
			t.Fatal("picked an upstream marked down")
		}
	}
	bal.markDown("b:1")
	bal.markDown("c:1")
	if u := bal.pick(); u == nil {
		t.Fatal("all down: no upstream at all")
	}
}

func TestFailingUpstreamIsSkipped(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + l.Addr().String()
	l.Close()
	live := newUpstream(t, "live")
	route := routeYAML("id: lb", "from: http://lb.test", fmt.Sprintf("to: [%q, %q]", downURL, live.URL))
	h := newHarness(t, parseConfig(t, "", route), newFakeAuthz(allowAll()))
	// A GET without a body is retried on the other upstream, so no client
	// ever sees the dead one.
	for i := range 10 {
		if resp, _ := h.get(t, "lb.test", "/"); resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	if live.count() != 10 {
		t.Errorf("live upstream got %d of 10", live.count())
	}
}

func TestHotReload(t *testing.T) {
	one, two := newUpstream(t, "one"), newUpstream(t, "two")
	next := make(chan struct{})
	stream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 2 {
			fmt.Fprintf(w, "data: %d\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(stream.Close)

	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	write := func(to string) {
		routes := routeYAML("id: app", "from: http://app.test", "to: "+to) +
			routeYAML("id: stream", "from: http://stream.test", "to: "+stream.URL)
		if err := os.WriteFile(path, []byte(configYAML("", routes)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(one.URL)
	src, err := config.NewSource(path, func(string) (string, bool) { return "", false }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWithSource(t, src, newFakeAuthz(allowAll()))

	if _, body := h.get(t, "app.test", "/"); body != "hello from one" {
		t.Fatalf("before reload: %q", body)
	}
	// A stream open across the reload keeps going.
	resp := h.do(t, http.MethodGet, "stream.test", "/", nil)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: 0\n" {
		t.Fatalf("stream: %q %v", line, err)
	}

	write(two.URL)
	if err := src.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if _, body := h.get(t, "app.test", "/"); body != "hello from two" {
		t.Fatalf("after reload: %q", body)
	}
	next <- struct{}{}
	if line, err := br.ReadString('\n'); err != nil || line != "data: 1\n" {
		t.Fatalf("stream after reload: %q %v", line, err)
	}
	next <- struct{}{}

	// A bad file is refused and the running routes stay.
	if err := os.WriteFile(path, []byte("routes: [{from: nope}]"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := src.Reload(context.Background()); err == nil {
		t.Fatal("bad config accepted")
	}
	if _, body := h.get(t, "app.test", "/"); body != "hello from two" {
		t.Fatalf("after refused reload: %q", body)
	}
}

// TestConcurrentRequestsDuringReloads runs requests from several
// goroutines while the configuration reloads (run it with -race).
func TestConcurrentRequestsDuringReloads(t *testing.T) {
	a, b := newUpstream(t, "a"), newUpstream(t, "b")
	path := filepath.Join(t.TempDir(), "config.yaml")
	write := func(to string) {
		routes := routeYAML("id: app", "from: http://app.test", fmt.Sprintf("to: [%q, %q]", to, b.URL+",2"), "set_request_headers: {X-N: v}")
		if err := os.WriteFile(path, []byte(configYAML("", routes)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(a.URL)
	src, err := config.NewSource(path, func(string) (string, bool) { return "", false }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	authz := newFakeAuthz(allowAll("x-pomerium-jwt-assertion", "jwt"))
	authz.record = false
	h := newHarnessWithSource(t, src, authz)

	const workers, each = 8, 40
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for range each {
				req, _ := http.NewRequest(http.MethodGet, h.front.URL+"/x", nil)
				req.Host = "app.test"
				resp, err := noRedirect.Do(req)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("status %d", resp.StatusCode)
					return
				}
			}
			errs <- nil
		}()
	}
	for i := range 5 {
		if i%2 == 0 {
			write(b.URL)
		} else {
			write(a.URL)
		}
		if err := src.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := a.count() + b.count(); got != workers*each {
		t.Errorf("upstreams got %d requests, want %d", got, workers*each)
	}
}
