package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Redis is a redis-server process owned by one test. Its data survives
// Stop and Start (append-only file in a temporary directory). Methods are
// safe for concurrent use.
type Redis struct {
	t    testing.TB
	port int
	dir  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result
	log    *os.File
}

// RedisOption configures StartRedis.
type RedisOption func(*Redis)

// WithRedisArgs adds redis-server command-line arguments, e.g.
// WithRedisArgs("--maxmemory", "10mb").
func WithRedisArgs(args ...string) RedisOption {
	return func(r *Redis) { r.args = append(r.args, args...) }
}

// StartRedis starts redis-server (from PATH) on a free 127.0.0.1 port with
// persistence in t.TempDir(), waits until it answers PING and stops it when
// the test ends. It fails the test when redis-server is not installed.
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("testutil: redis-server not found in PATH (%v); install it, e.g. `apt-get install -y redis-server`", err)
	}
	r := &Redis{t: t, port: FreePort(t), dir: t.TempDir()}
	for _, o := range opts {
		o(r)
	}
	t.Cleanup(r.Stop)
	r.Start()
	return r
}

// Addr returns the server's "127.0.0.1:PORT".
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// URL returns the server's redis:// connection string.
func (r *Redis) URL() string { return "redis://" + r.Addr() }

// Start starts the server again on the same port with the same data
// directory; it does nothing when the server runs. It waits until the
// server answers PING.
func (r *Redis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return
	}
	logf, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		r.t.Fatalf("testutil: %v", err)
	}
	args := append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port),
		"--save", "", "--appendonly", "yes",
		"--dir", r.dir, "--protected-mode", "no",
	}, r.args...)
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		r.t.Fatalf("testutil: starting redis-server: %v", err)
	}
	r.cmd, r.log = cmd, logf
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	err = waitFor(15*time.Second, func() error {
		select {
		case err := <-exited:
			r.cmd = nil
			logf.Close()
			r.t.Fatalf("testutil: redis-server exited: %v\n%s", err, r.logTail())
		default:
		}
		return ping(r.Addr())
	})
	if err != nil {
		r.stopLocked()
		r.t.Fatalf("testutil: redis-server on %s did not answer PING: %v\n%s", r.Addr(), err, r.logTail())
	}
	r.exited = exited
}

// Stop shuts the server down (SIGTERM: it flushes its append-only file)
// and waits for it to exit; it does nothing when the server is stopped.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

func (r *Redis) stopLocked() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
	r.cmd = nil
	r.log.Close()
}

func (r *Redis) logTail() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	s := string(b)
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
