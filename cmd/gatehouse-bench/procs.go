package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one process the bench started and measures.
type proc struct {
	Name string
	// PprofAddr is where the process serves Go's profiler; "" when not.
	PprofAddr string
	cmd       *exec.Cmd
	logPath   string
	done      chan struct{}
	err       error
}

// startProc starts path with args, its output going to logDir/name.log.
func startProc(name, path string, args, env []string, logDir string) (*proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	_ = os.Remove(filepath.Join(logDir, name+".head.log"))
	// O_APPEND: trimLog may truncate the file while the process writes.
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{Name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *proc) PID() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, with why.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); last log lines:\n%s", p.Name, p.err, p.logTail(20))
	default:
		return nil
	}
}

// stop sends SIGTERM, waits up to 12 s for the process to drain and exit,
// then kills it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(12 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// maxLogBytes bounds a process's log between wrk runs: gatehouse writes an
// access log line per request (hundreds of MB over a full bench).
const maxLogBytes = 64 << 20

// trimLog empties the process's log when it has grown past maxLogBytes,
// first keeping its first megabyte (start-up lines) in name.head.log.
// Called between runs, so the cost is never measured.
func (p *proc) trimLog() {
	fi, err := os.Stat(p.logPath)
	if err != nil || fi.Size() <= maxLogBytes {
		return
	}
	head := strings.TrimSuffix(p.logPath, ".log") + ".head.log"
	if _, err := os.Stat(head); os.IsNotExist(err) {
		if f, err := os.Open(p.logPath); err == nil {
			buf := make([]byte, 1<<20)
			n, _ := io.ReadFull(f, buf)
			f.Close()
			_ = os.WriteFile(head, buf[:n], 0o644)
		}
	}
	_ = os.Truncate(p.logPath, 0)
}

// logTail returns the last n lines of the process's log.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHTTP polls url until it answers 200 (or check accepts the answer),
// the process exits, or timeout passes.
func waitHTTP(ctx context.Context, p *proc, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := localhostClient(nil, time.Second)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	last := "no answer"
	for {
		if p != nil {
			if err := p.exited(); err != nil {
				return err
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			name := "process"
			tail := ""
			if p != nil {
				name, tail = p.Name, p.logTail(20)
			}
			return fmt.Errorf("%s not ready at %s within %s (last: %s); last log lines:\n%s", name, url, timeout, last, tail)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitRedis waits until a Redis server at addr answers PING, the process
// exits, or timeout passes.
func waitRedis(ctx context.Context, p *proc, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "no answer"
	for {
		if err := p.exited(); err != nil {
			return err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			_, err = conn.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			if err == nil {
				_, err = io.ReadFull(conn, buf)
			}
			conn.Close()
			if err == nil && string(buf) == "+PONG\r\n" {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("answered %q", buf)
			}
		}
		last = err.Error()
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s within %s (last: %s); last log lines:\n%s", p.Name, addr, timeout, last, p.logTail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeAddrs returns n distinct loopback addresses ("127.0.0.1:port") that
// were free a moment ago. The ports come from below the kernel's ephemeral
// range when it leaves room: a port the kernel picks for ":0" can be taken by
// any outgoing connection (wrk opens hundreds) before the process told about
// it binds it.
func freeAddrs(n int) ([]string, error) {
	low, high := 20000, ephemeralLow()-1
	var out []string
	seen := map[string]bool{}
	for tries := 0; len(out) < n && tries < 100*n; tries++ {
		addr := "127.0.0.1:0"
		if high-low > 1000 {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(low+rand.IntN(high-low+1)))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		a := l.Addr().String()
		l.Close()
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("found only %d of %d free loopback ports", len(out), n)
	}
	return out, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1024 {
		return 32768
	}
	return n
}

// port returns the port of a host:port address.
func port(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		panic(errors.New("bad address " + addr))
	}
	return p
}
