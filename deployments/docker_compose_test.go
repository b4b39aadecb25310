package deployments

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/devidp"
	"github.com/gatehouse/gatehouse/pkg/grafanatest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// TestDockerCompose runs docker-compose.yaml on a real Docker engine, as
// its users do: images built, healthchecks, depends_on conditions, Docker's
// DNS with several replicas, volumes and restart policies all Docker's own.
// It runs only under deployments/compose/ci.sh (`make compose-docker`),
// which starts a dockerd of its own, builds the compose plugin and the
// images without a registry, and sets GATEHOUSE_DOCKER_COMPOSE=1,
// DOCKER_HOST and DOCKER_CONFIG. deployments/compose/ci/override.yaml
// swaps the images for local ones and keeps published ports on loopback.
//
//  1. `docker compose up -d --build --wait`; alice@example.com signs in
//     through the edge (127.0.0.1:443) and the dev IdP (127.0.0.1:9000)
//     and is an Editor in the Grafana stand-in; bob@other.org gets 403.
//  2. `docker compose up -d --scale authorize=3 --scale databroker=2
//     --wait`: the logs of all three authorize containers show bob's
//     checks, so the proxy balances across every replica Docker's DNS
//     names; Prometheus scrapes all seven gatehouse containers.
//  3. Under a steady loop of requests, none of which may fail: `docker
//     kill` of one authorize replica (what `docker compose kill` sends); a
//     databroker replica's process killed from the host, which its restart
//     policy brings back; `docker compose restart databroker`.
//  4. `docker compose down -v` leaves no container, network or volume.
//
// Every wait is bounded; the timeline of the run is printed at the end.
func TestDockerCompose(t *testing.T) {
	if os.Getenv("GATEHOUSE_DOCKER_COMPOSE") != "1" {
		t.Skip("needs a Docker engine: run deployments/compose/ci.sh (make compose-docker)")
	}
	d := newDockerCompose(t)

	// 1. Up, as the README says, and sign in. The images are built first on
	// their own, to time the build apart from the start.
	d.compose(10*time.Minute, "build")
	d.mark("gatehouse:dev: " + strings.TrimSpace(d.docker(time.Minute, "image", "inspect", "-f",
		`user {{.Config.User}}, entrypoint {{json .Config.Entrypoint}}, {{.Size}} bytes`, "gatehouse:dev")))
	d.compose(10*time.Minute, "up", "-d", "--build", "--wait")
	d.mark("deployment up and healthy")
	d.checkLoopbackOnly()

	p, _ := loadCompose(t)
	ini := readFile(t, "grafana/grafana.ini")
	gcfg, err := grafanatest.ParseINIEnv(ini, mapEnv(env(p.Services["grafana"])))
	if err != nil {
		t.Fatal(err)
	}
	routes := routesOf(t, readFile(t, "compose/config.yaml"))
	from, _ := routes[0].(map[string]any)["from"].(string)
	target := from + "/api/user"

	// The README's way to the development CA.
	caFile := filepath.Join(t.TempDir(), "gatehouse-ca.pem")
	d.compose(time.Minute, "cp", "certs:/certs/ca.pem", caFile)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(readFile(t, caFile)) {
		t.Fatal("docker compose cp certs:/certs/ca.pem: no certificate")
	}
	d.pool = pool

	// Grafana has no healthcheck of its own: wait until the route answers.
	probe := d.browser()
	testutil.WaitFor(t, 60*time.Second, "the route to answer through the edge", func() error {
		resp, err := probe.Get(target)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})

	alice := d.browser()
	resp := testutil.DevIDPSignIn(t, alice, target, "alice@example.com", "Alice Liddell", "")
	var user grafanatest.User
	e2eReadJSON(t, resp, &user)
	if user.Login != devidp.Subject("alice@example.com") || user.Email != "alice@example.com" ||
		user.Name != "Alice Liddell" || user.OrgRole != gcfg.AutoAssignOrgRole {
		t.Fatalf("Grafana's /api/user = %+v, want login %s, name Alice Liddell, role %s",
			user, devidp.Subject("alice@example.com"), gcfg.AutoAssignOrgRole)
	}
	d.mark("alice@example.com signed in: Grafana role " + user.OrgRole)

	bob := d.browser()
	resp = testutil.DevIDPSignIn(t, bob, target, "bob@other.org", "Bob", "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob@other.org: %s %d, want 403:\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	d.mark("bob@other.org refused with 403")

	// 2. Scale the running deployment.
	d.compose(5*time.Minute, "up", "-d", "--scale", "authorize=3", "--scale", "databroker=2", "--wait")
	authorizes := d.containers("authorize")
	if len(authorizes) != 3 || len(d.containers("databroker")) != 2 {
		t.Fatalf("after scaling: authorize %v, databroker %v", authorizes, d.containers("databroker"))
	}
	d.mark("scaled to authorize=3 databroker=2")
	// Denials are logged at info, so bob's requests show which authorize
	// container checked them. gatehouse resolves names again every 10 s.
	counts := map[string]int{}
	testutil.WaitFor(t, 60*time.Second, "bob's checks on every authorize container", func() error {
		for range 5 {
			resp := e2eGet(t, bob, target)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("bob@other.org after scaling: %d, want 403", resp.StatusCode)
			}
		}
		var missing []string
		for _, c := range authorizes {
			counts[c.name] = strings.Count(d.logs(c.id), `"email":"bob@other.org"`)
			if counts[c.name] == 0 {
				missing = append(missing, c.name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("no check of bob's in %v yet (%v)", missing, counts)
		}
		return nil
	})
	d.mark(fmt.Sprintf("bob's checks per authorize container: %v", counts))
	// Prometheus (deployments/prometheus/prometheus.yml) finds every
	// gatehouse container by Docker's DNS, the added replicas too: 3
	// authorize, 2 databroker, authenticate and proxy.
	upQuery := regexp.MustCompile(`=> ([0-9]+) @`)
	testutil.WaitFor(t, 90*time.Second, "Prometheus to scrape all 7 gatehouse containers", func() error {
		out := d.run(time.Minute, d.composeArgs("exec", "-T", "prometheus", "promtool", "query", "instant",
			"http://127.0.0.1:9090", `count(up{job="gatehouse"} == 1)`)...)
		if m := upQuery.FindStringSubmatch(out); m == nil || m[1] != "7" {
			return fmt.Errorf("count(up == 1): %s", out)
		}
		return nil
	})
	d.mark("Prometheus scrapes all 7 gatehouse containers")
	e2eReadJSON(t, e2eGet(t, alice, target), &user)

	// 3. Replicas killed and restarted under a steady request loop.
	loop := d.startLoop(alice, bob, target)

	victim := authorizes[len(authorizes)-1]
	loop.waitMore(t, 50)
	d.docker(time.Minute, "kill", victim.name)
	d.mark("docker kill " + victim.name)
	loop.waitMore(t, 200)
	d.mark(fmt.Sprintf("%d requests after the kill", 200))

	// A crash, not a stop: the restart policy (unless-stopped) starts the
	// container again.
	crashed := d.containers("databroker")[0]
	before := d.inspect(crashed.id, "{{.RestartCount}}")
	pid, err := strconv.Atoi(d.inspect(crashed.id, "{{.State.Pid}}"))
	if err != nil || pid <= 0 {
		t.Fatalf("pid of %s: %q %v", crashed.name, d.inspect(crashed.id, "{{.State.Pid}}"), err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s's process %d: %v", crashed.name, pid, err)
	}
	d.mark(fmt.Sprintf("killed %s's process (pid %d) from the host", crashed.name, pid))
	testutil.WaitFor(t, 90*time.Second, crashed.name+" restarted by its restart policy and healthy", func() error {
		n, h := d.inspect(crashed.id, "{{.RestartCount}}"), d.inspect(crashed.id, "{{.State.Health.Status}}")
		if n == before || h != "healthy" {
			return fmt.Errorf("restart count %s (was %s), health %s", n, before, h)
		}
		return nil
	})
	d.mark(crashed.name + " restarted by Docker, healthy")
	loop.waitMore(t, 100)

	restartAt := time.Now()
	d.compose(3*time.Minute, "restart", "databroker")
	d.mark("docker compose restart databroker returned; restarted: " + strings.Join(d.startedSince(restartAt), " "))
	testutil.WaitFor(t, 90*time.Second, "every databroker healthy again", func() error {
		for _, c := range d.containers("databroker") {
			if h := d.inspect(c.id, "{{.State.Health.Status}}"); h != "healthy" {
				return fmt.Errorf("%s is %s", c.name, h)
			}
		}
		return nil
	})
	d.mark("databrokers healthy after the restart")
	loop.waitMore(t, 200)
	ok, failed := loop.stop()
	d.mark(fmt.Sprintf("request loop: %d answered as expected, %d failed", ok, len(failed)))
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed while replicas were killed and restarted:\n%s",
			len(failed), ok+len(failed), strings.Join(failed[:min(len(failed), 20)], "\n"))
	}

	// 4. Down, and nothing left. (The edge's nginx stops gracefully: it
	// waits for open connections, such as idle keep-alive ones, to close.)
	for _, c := range []*http.Client{probe, alice, bob} {
		c.CloseIdleConnections()
	}
	d.compose(3*time.Minute, "down", "-v", "--timeout", "10")
	d.mark("docker compose down -v")
	label := "label=com.docker.compose.project=" + composeProject
	for _, kind := range []string{"container", "network", "volume"} {
		args := []string{kind, "ls", "-q", "--filter", label}
		if kind == "container" {
			args = append(args, "--all")
		}
		if out := strings.TrimSpace(d.docker(time.Minute, args...)); out != "" {
			t.Errorf("after down -v, %ss of the project remain: %s", kind, out)
		}
	}
	for _, port := range []string{"443", "9000", "3000"} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
			c.Close()
			t.Errorf("after down -v, 127.0.0.1:%s still accepts connections", port)
		}
	}
	d.down = true
}

const composeProject = "gatehouse"

type dockerCompose struct {
	t     *testing.T
	root  string
	cli   string
	start time.Time
	pool  *x509.CertPool
	down  bool

	mu       sync.Mutex
	timeline []string
}

type dockerContainer struct{ id, name string }

func newDockerCompose(t *testing.T) *dockerCompose {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerCompose{t: t, root: root, cli: "docker", start: time.Now()}
	if v := os.Getenv("GATEHOUSE_DOCKER"); v != "" {
		d.cli = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			d.mark("failed: state of the deployment follows")
			t.Log(d.run(time.Minute, d.composeArgs("ps", "-a")...))
			t.Log(d.run(time.Minute, d.composeArgs("logs", "--no-color", "--tail", "60")...))
		}
		if !d.down {
			d.run(3*time.Minute, d.composeArgs("down", "-v", "--timeout", "10")...)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		t.Logf("timeline:\n%s", strings.Join(d.timeline, "\n"))
	})
	return d
}

// mark adds an event to the timeline, with the time since the start.
func (d *dockerCompose) mark(what string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	line := fmt.Sprintf("%8.1fs  %s", time.Since(d.start).Seconds(), what)
	d.timeline = append(d.timeline, line)
	d.t.Log(line)
}

func (d *dockerCompose) composeArgs(args ...string) []string {
	return append([]string{"compose", "-p", composeProject,
		"-f", filepath.Join(d.root, "docker-compose.yaml"),
		"-f", filepath.Join(d.root, "deployments/compose/ci/override.yaml")}, args...)
}

// run runs the docker CLI, bounded, and returns its output, also when it
// fails.
func (d *dockerCompose) run(timeout time.Duration, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.cli, args...)
	cmd.Dir = d.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (d *dockerCompose) mustRun(timeout time.Duration, args ...string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.cli, args...)
	cmd.Dir = d.root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		d.mark(fmt.Sprintf("docker %s failed after %v", strings.Join(args, " "), time.Since(t0).Round(time.Millisecond)))
		d.t.Fatalf("docker %s: %v (bound %v)\n%s%s", strings.Join(args, " "), err, timeout, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// compose runs `docker compose` with the CI override and marks how long it
// took.
func (d *dockerCompose) compose(timeout time.Duration, args ...string) string {
	d.t.Helper()
	t0 := time.Now()
	out := d.mustRun(timeout, d.composeArgs(args...)...)
	d.mark(fmt.Sprintf("docker compose %s: %v", strings.Join(args, " "), time.Since(t0).Round(time.Millisecond)))
	return out
}

func (d *dockerCompose) docker(timeout time.Duration, args ...string) string {
	d.t.Helper()
	return d.mustRun(timeout, args...)
}

// containers lists a service's running containers, by replica number.
func (d *dockerCompose) containers(service string) []dockerContainer {
	d.t.Helper()
	out := d.docker(time.Minute, "ps", "--filter", "label=com.docker.compose.project="+composeProject,
		"--filter", "label=com.docker.compose.service="+service,
		"--format", `{{.ID}} {{.Names}} {{.Label "com.docker.compose.container-number"}}`)
	type numbered struct {
		c dockerContainer
		n int
	}
	var cs []numbered
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.Atoi(f[2])
		cs = append(cs, numbered{dockerContainer{f[0], f[1]}, n})
	}
	slices.SortFunc(cs, func(a, b numbered) int { return a.n - b.n })
	var res []dockerContainer
	for _, c := range cs {
		res = append(res, c.c)
	}
	return res
}

func (d *dockerCompose) inspect(id, format string) string {
	d.t.Helper()
	return strings.TrimSpace(d.docker(time.Minute, "inspect", "-f", format, id))
}

// startedSince names the project's running containers started after t.
func (d *dockerCompose) startedSince(t time.Time) []string {
	d.t.Helper()
	var names []string
	ids := strings.Fields(d.docker(time.Minute, "ps", "-q", "--filter", "label=com.docker.compose.project="+composeProject))
	for _, id := range ids {
		f := strings.Fields(d.inspect(id, "{{.Name}} {{.State.StartedAt}}"))
		if len(f) != 2 {
			continue
		}
		if at, err := time.Parse(time.RFC3339Nano, f[1]); err == nil && at.After(t.Add(-time.Second)) {
			names = append(names, strings.TrimPrefix(f[0], "/"))
		}
	}
	slices.Sort(names)
	return names
}

func (d *dockerCompose) logs(id string) string {
	d.t.Helper()
	return d.run(time.Minute, "logs", id)
}

// checkLoopbackOnly fails the test when a container publishes a port
// beyond 127.0.0.1.
func (d *dockerCompose) checkLoopbackOnly() {
	d.t.Helper()
	out := d.docker(time.Minute, "ps", "--filter", "label=com.docker.compose.project="+composeProject,
		"--format", "{{.Names}} {{.Ports}}")
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		name, ports, _ := strings.Cut(l, " ")
		for _, p := range strings.Split(ports, ",") {
			p = strings.TrimSpace(p)
			if !strings.Contains(p, "->") {
				continue
			}
			n++
			if !strings.HasPrefix(p, "127.0.0.1:") {
				d.t.Errorf("%s publishes %s beyond 127.0.0.1", name, p)
			}
		}
	}
	if n == 0 {
		d.t.Errorf("no published port found in:\n%s", out)
	}
	// And what actually listens on the host: every socket of the engine's
	// processes (dockerd, containerd, docker-proxy) is on loopback.
	ss, err := exec.Command("ss", "-H", "-ltnup").CombinedOutput()
	if err != nil {
		d.t.Fatalf("ss: %v\n%s", err, ss)
	}
	engine := 0
	for _, l := range strings.Split(string(ss), "\n") {
		if !strings.Contains(l, `"docker`) && !strings.Contains(l, `"containerd`) {
			continue
		}
		engine++
		f := strings.Fields(l)
		if len(f) < 5 || !strings.HasPrefix(f[4], "127.0.0.1:") {
			d.t.Errorf("the engine listens beyond loopback: %s", l)
		}
	}
	d.mark(fmt.Sprintf("%d published ports, all on 127.0.0.1; %d engine sockets on the host, all on 127.0.0.1", n, engine))
}

// browser is a cookie-jar client that reaches the published ports as the
// host's browser does (*.localhost.pomerium.io is 127.0.0.1) and trusts
// the development CA.
func (d *dockerCompose) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Jar: jar,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			},
			TLSClientConfig: tlsConfig(d.pool),
		},
		Timeout: 20 * time.Second,
	}
}

// requestLoop sends alice's and bob's requests one after another until
// stopped (or 10 minutes pass) and counts the answers that are not what
// they should be.
type requestLoop struct {
	mu     sync.Mutex
	ok     int
	failed []string
	more   chan struct{}
	done   chan struct{}
	quit   chan struct{}
}

func (d *dockerCompose) startLoop(alice, bob *http.Client, target string) *requestLoop {
	l := &requestLoop{more: make(chan struct{}, 1), done: make(chan struct{}), quit: make(chan struct{})}
	go func() {
		defer close(l.done)
		deadline := time.Now().Add(10 * time.Minute)
		for i := 0; time.Now().Before(deadline); i++ {
			select {
			case <-l.quit:
				return
			default:
			}
			who, c, want := "alice", alice, http.StatusOK
			if i%5 == 4 {
				who, c, want = "bob", bob, http.StatusForbidden
			}
			t0 := time.Now()
			err := loopRequest(c, target, want)
			l.mu.Lock()
			if err != nil {
				l.failed = append(l.failed, fmt.Sprintf("%8.1fs %s: %v (after %v)",
					time.Since(d.start).Seconds(), who, err, time.Since(t0).Round(time.Millisecond)))
			} else {
				l.ok++
			}
			l.mu.Unlock()
			select {
			case l.more <- struct{}{}:
			default:
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return l
}

func loopRequest(c *http.Client, target string, want int) error {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s: %d, want %d: %.200s", resp.Request.URL, resp.StatusCode, want, body)
	}
	if want == http.StatusOK {
		var u grafanatest.User
		if err := json.Unmarshal(body, &u); err != nil || u.Email != "alice@example.com" {
			return fmt.Errorf("%s: not alice's Grafana user: %.200s", resp.Request.URL, body)
		}
	}
	return nil
}

// waitMore waits, bounded, until n more requests have been sent.
func (l *requestLoop) waitMore(t *testing.T, n int) {
	t.Helper()
	count := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.ok + len(l.failed)
	}
	want := count() + n
	deadline := time.After(2 * time.Minute)
	for count() < want {
		select {
		case <-l.more:
		case <-l.done:
			t.Fatal("the request loop ended early")
		case <-deadline:
			t.Fatalf("the request loop sent %d of %d requests in 2 minutes", count()-want+n, n)
		}
	}
}

func (l *requestLoop) stop() (int, []string) {
	close(l.quit)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, l.failed
}
