package testutil

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a PostgreSQL server (Debian's postgresql package) owned by
// one test: initdb'd in a temporary directory, listening on a free
// 127.0.0.1 port (no Unix socket), with password authentication. Its data
// survives Stop and Start. Methods are safe for concurrent use.
//
// PostgreSQL refuses to run as root, so as root (CI) the server runs as
// the unprivileged user nobody, in a directory owned by it; as any other
// user it runs as that user.
type Postgres struct {
	t    testing.TB
	port int
	dir  string // data directory and log, removed by the cleanup
	bin  string
	cred *syscall.Credential

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
	log    *os.File
}

// Postgres credentials of the test server.
const (
	PostgresUser     = "gatehouse"
	PostgresPassword = "gatehouse-test-password"
)

// PostgresBinDir returns the directory of initdb and postgres: the one on
// PATH, else the newest /usr/lib/postgresql/*/bin (Debian keeps them off
// PATH).
func PostgresBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real // a link on PATH: postgres and pgbench sit beside the target
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb not found on PATH nor in /usr/lib/postgresql/*/bin; install PostgreSQL, e.g. `apt-get install -y postgresql`")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartPostgres initdb's and starts a PostgreSQL server, waits until it
// accepts connections and stops it (and removes its data) when the test
// ends. It fails the test when PostgreSQL is not installed.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin, err := PostgresBinDir()
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	dir, err := os.MkdirTemp("", "gatehouse-pg-")
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	p := &Postgres{t: t, port: FreePort(t), dir: dir, bin: bin}
	t.Cleanup(func() {
		p.Stop()
		_ = os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("testutil: running as root, PostgreSQL needs an unprivileged user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatalf("testutil: %v", err)
		}
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(PostgresPassword+"\n"), 0o600); err != nil {
		t.Fatalf("testutil: %v", err)
	}
	if p.cred != nil {
		_ = os.Chown(pwfile, int(p.cred.Uid), int(p.cred.Gid))
	}
	initdb := p.command("initdb", "-D", p.dataDir(), "-U", PostgresUser, "--pwfile", pwfile,
		"-A", "scram-sha-256", "-E", "UTF8", "--locale", "C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("testutil: initdb: %v\n%s", err, out)
	}
	p.Start()
	return p
}

func (p *Postgres) dataDir() string { return filepath.Join(p.dir, "data") }

// command returns bin/name args, run as the server's user.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	return cmd
}

// Addr returns the server's "127.0.0.1:PORT".
func (p *Postgres) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// BinDir returns the directory of the server's binaries (pgbench, psql).
func (p *Postgres) BinDir() string { return p.bin }

// URL returns a postgres:// connection string for database db ("" for
// the default database, postgres) with sslmode=disable.
func (p *Postgres) URL(db string) string {
	if db == "" {
		db = "postgres"
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(PostgresUser, PostgresPassword), Host: p.Addr(), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDatabase creates database name and returns its URL.
func (p *Postgres) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.URL(""))
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testutil: create database %s: %v", name, err)
	}
	return p.URL(name)
}

// Start starts the server again on the same port with the same data; it
// does nothing when the server runs. It waits until the server accepts
// connections.
func (p *Postgres) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return
	}
	logf, err := os.OpenFile(filepath.Join(p.dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatalf("testutil: %v", err)
	}
	cmd := p.command("postgres", "-D", p.dataDir(), "-p", strconv.Itoa(p.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB",
		// WAL is written at once but flushed in the background, like Redis
		// with appendfsync everysec: a crash of the machine may lose the
		// last fraction of a second, a restart of the server loses nothing.
		"-c", "synchronous_commit=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatalf("testutil: starting postgres: %v", err)
	}
	p.cmd, p.log = cmd, logf
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	err = waitFor(30*time.Second, func() error {
		select {
		case err := <-exited:
			p.cmd = nil
			logf.Close()
			p.t.Fatalf("testutil: postgres exited: %v\n%s", err, p.logTail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, p.URL(""))
		if err != nil {
			return err
		}
		return c.Close(ctx)
	})
	if err != nil {
		p.stopLocked()
		p.t.Fatalf("testutil: postgres on %s did not accept connections: %v\n%s", p.Addr(), err, p.logTail())
	}
	p.exited = exited
}

// Stop shuts the server down (fast shutdown: it ends the sessions and
// writes a checkpoint) and waits for it to exit; it does nothing when the
// server is stopped.
func (p *Postgres) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
}

func (p *Postgres) stopLocked() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
	p.log.Close()
}

func (p *Postgres) logTail() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
	s := string(b)
	if len(s) > 3000 {
		s = s[len(s)-3000:]
	}
	return s
}
