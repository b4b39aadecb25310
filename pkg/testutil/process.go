package testutil

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Gatehouse builds the gatehouse binary once per test binary and returns
// its path.
func Gatehouse(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "gatehouse-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "gatehouse")
		// The tags of make build (Makefile GOTAGS), so that tests run what ships.
		cmd := exec.Command("go", "build", "-tags", "vtprotobuf", "-o", buildPath, "./cmd/gatehouse")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build gatehouse: %v", buildErr)
	}
	return buildPath
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the gatehouse module")
	}
	return filepath.Dir(mod), nil
}

// Process is a child process owned by a test. Its output is kept and
// printed when the test fails.
type Process struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartProcess runs bin with args and extra environment (KEY=VALUE); it is
// killed when the test ends.
func StartProcess(t testing.TB, name, bin string, args []string, env ...string) *Process {
	t.Helper()
	p := &Process{t: t, name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, p.Output())
		}
	})
	return p
}

// Output returns what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// Signal sends sig and waits up to timeout for the process to exit,
// returning its exit error (nil for exit 0).
func (p *Process) Signal(sig syscall.Signal, timeout time.Duration) error {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s did not exit within %v after %v", p.name, timeout, sig)
	}
}

// Stop sends SIGTERM and fails the test unless the process exits 0 within 15 s.
func (p *Process) Stop() {
	p.t.Helper()
	if err := p.Signal(syscall.SIGTERM, 15*time.Second); err != nil {
		p.t.Fatalf("stop %s: %v", p.name, err)
	}
}

// Kill ends the process at once.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitHTTP waits until url answers 200, bounded by timeout; it fails the
// test (with the process output, if given) otherwise, and at once when one
// of procs exits.
func WaitHTTP(t testing.TB, url string, timeout time.Duration, procs ...*Process) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	WaitFor(t, timeout, url+" to answer 200", func() error {
		for _, p := range procs {
			if p.Exited() {
				t.Fatalf("%s exited while waiting for %s:\n%s", p.name, url, p.Output())
			}
		}
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// WaitTCP waits until addr accepts connections, bounded by timeout.
func WaitTCP(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, addr+" to accept connections", func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// WriteFile writes content to name in a test temp dir and returns the path.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
