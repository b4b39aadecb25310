package deployments

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/gatehouse/gatehouse/pkg/devidp"
	"github.com/gatehouse/gatehouse/pkg/grafanatest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// TestComposeE2E runs docker-compose.yaml without Docker: every container
// is a process in a Linux network namespace of its own, on a private
// bridge network (10.213.0.0/24, inside namespaces the test makes), with
// the compose file's own command, environment and mounted files. Compose
// service names and network aliases resolve like Docker's DNS does, to
// every replica (through /etc/hosts in each namespace). The images are
// stood in for:
//
//   - gatehouse:dev: the gatehouse binary built from this tree (the image's
//     entrypoint /gatehouse), with the compose command;
//   - redis: redis-server from PATH, with the compose command, working in
//     the /data volume, protected mode off as the official image builds it;
//   - nginx (edge): this test binary re-executed as an SNI passthrough
//     that routes by the mounted edge.conf;
//   - grafana: this test binary re-executed as pkg/grafanatest, configured
//     by the mounted grafana.ini and the container's GF_* environment;
//   - prometheus: this test binary re-executed as a scraper of the mounted
//     prometheus.yml's targets.
//
// Container paths are rewritten to what the mounts hold (bind mounts: the
// repository's files; named volumes: a directory per volume), nothing
// else. Containers start in depends_on order, each condition honoured
// (service_healthy runs the compose health check inside the container's
// namespace). Databroker and authorize run two replicas each, as with
// `docker compose up --scale`.
//
// Then a browser in a namespace of its own, reaching the published names
// as the host does (443 → edge, 9000 → idp), opens Grafana, signs in at
// the dev IdP as alice@example.com and gets her from Grafana's /api/user;
// bob@other.org is refused with 403 by the route's policy.
func TestComposeE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole compose deployment")
	}
	if os.Geteuid() != 0 {
		t.Skip("the compose end-to-end test runs containers in network namespaces and needs root (CI runs as root)")
	}
	start := time.Now()
	r := composeUp(t, map[string]int{"databroker": 2, "authorize": 2})
	t.Logf("compose deployment up in %v", time.Since(start).Round(time.Millisecond))

	// What the deployment promises, from its own files.
	grafanaSvc := r.p.Services["grafana"]
	ini := readFile(t, r.containers["grafana"][0].path("/etc/grafana/grafana.ini"))
	gcfg, err := grafanatest.ParseINIEnv(ini, mapEnv(env(grafanaSvc)))
	if err != nil {
		t.Fatal(err)
	}
	routes := routesOf(t, readFile(t, filepath.Join(r.root, "deployments/compose/config.yaml")))
	from, _ := routes[0].(map[string]any)["from"].(string)
	issuer, _ := flagValue(r.p.Services["idp"].Command, "issuer")
	target := from + "/api/user"

	// Alice is in example.com: Grafana signs her up by the JWT.
	alice := r.browser()
	resp := r.signIn(alice, target, issuer, "alice@example.com", "Alice Liddell")
	var user grafanatest.User
	e2eReadJSON(t, resp, &user)
	if user.Login != devidp.Subject("alice@example.com") || user.Email != "alice@example.com" ||
		user.Name != "Alice Liddell" || user.OrgRole != gcfg.AutoAssignOrgRole {
		t.Fatalf("Grafana's /api/user = %+v, want login %s, name Alice Liddell, role %s",
			user, devidp.Subject("alice@example.com"), gcfg.AutoAssignOrgRole)
	}
	// Her session keeps working.
	for range 10 {
		e2eReadJSON(t, e2eGet(t, alice, target), &user)
	}

	// Bob is not: the guide's policy refuses him.
	bob := r.browser()
	resp = r.signIn(bob, target, issuer, "bob@other.org", "Bob")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob@other.org: %s %d, want 403:\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	// The proxy balances its checks over every authorize replica behind
	// the one name, as with Docker's DNS. Denials are logged at info (allowed
	// requests only at debug), so bob's show where each check went.
	for range 10 {
		resp := e2eGet(t, bob, target)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("bob@other.org again: %d, want 403", resp.StatusCode)
		}
	}
	for _, c := range r.containers["authorize"] {
		if !strings.Contains(c.proc.Output(), `"email":"bob@other.org"`) {
			t.Errorf("%s checked none of bob's requests: the proxy does not reach every authorize replica", c.name)
		}
	}

	// `docker compose up -d --scale authorize=3` on the running deployment:
	// the new replica gets Checks without the proxy restarting (issue 19:
	// it got none until the proxy was restarted). gatehouse resolves the
	// name again every 10 s; the bound leaves room for a loaded machine.
	added := r.scaleUp("authorize")
	testutil.WaitFor(t, 45*time.Second, added.name+" to check one of bob's requests", func() bool {
		resp := e2eGet(t, bob, target)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("bob@other.org while scaling: %d, want 403", resp.StatusCode)
		}
		return strings.Contains(added.proc.Output(), `"email":"bob@other.org"`)
	})
	t.Logf("whole test in %v", time.Since(start).Round(time.Millisecond))
}

// e2eRole is the first argument of this test binary when it runs as a
// container's process instead of as tests (see TestMain).
const e2eRole = "compose-e2e:"

// TestMain runs the test binary as a stand-in image when asked to by its
// first argument, as the compose end-to-end test does; else the tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		if role, ok := strings.CutPrefix(os.Args[1], e2eRole); ok {
			os.Exit(runRole(role, os.Args[2:]))
		}
	}
	os.Exit(m.Run())
}

func runRole(role string, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch role {
	case "grafana":
		err = grafanatest.RunCommand(ctx, args, os.Stdout)
	case "edge":
		err = runEdge(ctx, args)
	case "prometheus":
		err = runPrometheus(ctx, args)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
		return 1
	}
	return 0
}

// composeRun is the compose project running as namespaced processes.
type composeRun struct {
	t          *testing.T
	p          *types.Project
	root       string
	bin        string // gatehouse, built from this tree
	self       string // this test binary
	net        *testutil.Network
	browserNS  *testutil.Namespace
	volumes    map[string]string // named volume → directory
	containers map[string][]*composeContainer
	started    map[string]bool
	caPool     *x509.CertPool
}

// composeContainer is one replica of a compose service.
type composeContainer struct {
	name   string // service-N, as compose names them (without the project)
	svc    types.ServiceConfig
	ns     *testutil.Namespace
	mounts []composeMount // longest target first
	env    []string
	proc   *testutil.Process
}

type composeMount struct{ target, source string }

// The images' own environment (ENV of their Dockerfiles), under the
// compose environment.
const imagePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func composeUp(t *testing.T, scale map[string]int) *composeRun {
	p, root := loadCompose(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r := &composeRun{
		t: t, p: p, root: root, self: self,
		bin:        testutil.Gatehouse(t),
		net:        testutil.NewNetwork(t, "10.213.0.0/24"),
		volumes:    map[string]string{},
		containers: map[string][]*composeContainer{},
		started:    map[string]bool{},
	}
	for name := range p.Volumes {
		r.volumes[name] = filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(r.volumes[name], 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// One namespace per container, and the DNS answers of the network.
	names := slices.Sorted(maps.Keys(p.Services))
	for _, name := range names {
		s := p.Services[name]
		n := max(scale[name], 1)
		for i := 1; i <= n; i++ {
			c := &composeContainer{name: fmt.Sprintf("%s-%d", name, i), svc: s}
			c.ns = r.net.Add(c.name)
			c.mounts = r.mounts(s)
			r.containers[name] = append(r.containers[name], c)
		}
	}
	for _, name := range names {
		addrs := r.addrs(name)
		r.net.AddHost(name, addrs...)
		for _, n := range p.Services[name].Networks {
			if n != nil {
				for _, alias := range n.Aliases {
					r.net.AddHost(alias, addrs...)
				}
			}
		}
	}
	// The host's browser: the public names resolve to the published ports'
	// containers (443 edge, 9000 idp), as the aliases above do.
	r.browserNS = r.net.Add("browser")

	for _, name := range names {
		r.up(name)
	}
	for _, name := range names {
		if p.Services[name].Restart != "no" {
			r.waitReady(name)
		}
	}
	ca, err := os.ReadFile(r.containers["certs"][0].path("/certs/ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	r.caPool = x509.NewCertPool()
	if !r.caPool.AppendCertsFromPEM(ca) {
		t.Fatal("no CA certificate in the certs volume")
	}
	return r
}

// scaleUp adds one replica to a running service, as `docker compose up
// --scale` does: a container in a namespace of its own, its address under
// the service's name in every container's hosts table, started and healthy.
func (r *composeRun) scaleUp(name string) *composeContainer {
	r.t.Helper()
	s := r.p.Services[name]
	c := &composeContainer{name: fmt.Sprintf("%s-%d", name, len(r.containers[name])+1), svc: s}
	c.ns = r.net.Add(c.name)
	c.mounts = r.mounts(s)
	r.containers[name] = append(r.containers[name], c)
	r.net.AddHost(name, c.ns.Addr)
	r.start(c)
	r.waitReady(name)
	return c
}

func (r *composeRun) addrs(service string) []netip.Addr {
	var out []netip.Addr
	for _, c := range r.containers[service] {
		out = append(out, c.ns.Addr)
	}
	return out
}

// mounts maps a service's mount targets to directories of this test.
func (r *composeRun) mounts(s types.ServiceConfig) []composeMount {
	var out []composeMount
	for _, v := range s.Volumes {
		switch v.Type {
		case types.VolumeTypeBind:
			out = append(out, composeMount{v.Target, v.Source})
		case types.VolumeTypeVolume:
			dir, ok := r.volumes[v.Source]
			if !ok {
				dir = r.t.TempDir() // anonymous
			}
			out = append(out, composeMount{v.Target, dir})
		default:
			r.t.Fatalf("%s: mount type %s has no stand-in", s.Name, v.Type)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i].target) > len(out[j].target) })
	return out
}

// path rewrites container paths to what is mounted there: in a value, in
// each element of a ':' list, and in the value of a --flag=value.
func (c *composeContainer) path(s string) string {
	if k, v, ok := strings.Cut(s, "="); ok && strings.HasPrefix(k, "-") {
		return k + "=" + c.path(v)
	}
	parts := strings.Split(s, ":")
	for i, part := range parts {
		for _, m := range c.mounts {
			if part == m.target {
				parts[i] = m.source
				break
			}
			if rest, ok := strings.CutPrefix(part, m.target+"/"); ok {
				parts[i] = filepath.Join(m.source, rest)
				break
			}
		}
	}
	return strings.Join(parts, ":")
}

func (c *composeContainer) paths(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = c.path(a)
	}
	return out
}

// standIn names the stand-in for a service's image.
func standIn(s types.ServiceConfig) string {
	for _, kind := range []string{"gatehouse", "redis", "nginx", "grafana/grafana", "prom/prometheus"} {
		if strings.HasPrefix(s.Image, kind+":") {
			return kind
		}
	}
	return s.Image
}

// up starts a service after its dependencies, as compose does.
func (r *composeRun) up(name string) {
	if r.started[name] {
		return
	}
	r.started[name] = true
	s := r.p.Services[name]
	for _, dep := range slices.Sorted(maps.Keys(s.DependsOn)) {
		r.up(dep)
		switch cond := s.DependsOn[dep].Condition; cond {
		case types.ServiceConditionStarted:
		case types.ServiceConditionHealthy:
			r.waitHealthy(dep)
		case types.ServiceConditionCompletedSuccessfully:
			for _, c := range r.containers[dep] {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := c.proc.Wait(ctx)
				cancel()
				if err != nil {
					r.t.Fatalf("%s waits for %s to complete: %v\n%s", name, c.name, err, c.proc.Output())
				}
			}
		default:
			r.t.Fatalf("%s: depends_on %s condition %q", name, dep, cond)
		}
	}
	for _, c := range r.containers[name] {
		r.start(c)
	}
}

func (r *composeRun) start(c *composeContainer) {
	s := c.svc
	if len(s.Entrypoint) > 0 {
		r.t.Fatalf("%s: an entrypoint override has no stand-in", c.name)
	}
	env := []string{imagePath}
	for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
		if v := s.Environment[k]; v != nil {
			env = append(env, k+"="+c.path(*v))
		}
	}
	c.env = env
	var cmd *exec.Cmd
	switch standIn(s) {
	case "gatehouse":
		// ENTRYPOINT ["/gatehouse"]; the command is its arguments.
		cmd = c.ns.Command(r.bin, c.paths(s.Command)...)
	case "redis":
		if len(s.Command) == 0 || s.Command[0] != "redis-server" {
			r.t.Fatalf("%s: command %v is not redis-server", c.name, s.Command)
		}
		bin, err := exec.LookPath("redis-server")
		if err != nil {
			r.t.Fatal("redis-server is not installed")
		}
		// The official image builds Redis with protected mode off, so
		// other containers may connect; its WORKDIR is the /data volume.
		cmd = c.ns.Command(bin, append(c.paths(s.Command[1:]), "--protected-mode", "no")...)
		cmd.Dir = c.path("/data")
	case "nginx":
		// nginx reads /etc/nginx/nginx.conf: the mounted edge.conf.
		cmd = c.ns.Command(r.self, e2eRole+"edge", "--config", c.path("/etc/nginx/nginx.conf"))
	case "grafana/grafana":
		// Grafana reads /etc/grafana/grafana.ini and listens on :3000.
		cmd = c.ns.Command(r.self, e2eRole+"grafana", "--config", c.path("/etc/grafana/grafana.ini"), "--address", "0.0.0.0:3000")
	case "prom/prometheus":
		// Prometheus reads /etc/prometheus/prometheus.yml and listens on :9090.
		cmd = c.ns.Command(r.self, e2eRole+"prometheus", "--config", c.path("/etc/prometheus/prometheus.yml"))
	default:
		r.t.Fatalf("%s: no stand-in for image %s", c.name, s.Image)
	}
	cmd.Env = env
	c.proc = c.ns.Start(r.t, c.name, cmd)
}

// waitHealthy runs the service's health check in every replica's
// namespace, with its environment, until it passes.
func (r *composeRun) waitHealthy(name string) {
	s := r.p.Services[name]
	hc := s.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
		r.t.Fatalf("%s: health check %v: want [CMD ...]", name, hc)
	}
	timeout := 3 * time.Second
	if hc.Timeout != nil {
		timeout = time.Duration(*hc.Timeout)
	}
	for _, c := range r.containers[name] {
		args := c.paths(hc.Test[1:])
		switch {
		case standIn(s) == "gatehouse" && args[0] == "/gatehouse":
			args[0] = r.bin
		case standIn(s) == "redis" && args[0] == "redis-cli":
			bin, err := exec.LookPath("redis-cli")
			if err != nil {
				r.t.Fatal("redis-cli is not installed")
			}
			args[0] = bin
		default:
			r.t.Fatalf("%s: health check %v has no stand-in", name, hc.Test)
		}
		r.poll(c, "health check "+strings.Join(hc.Test[1:], " "), func() error {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			cmd := c.ns.Command(args[0], args[1:]...)
			cmd.Env = c.env
			out, err := cmd.CombinedOutput()
			if err != nil || ctx.Err() != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	}
}

// waitReady waits for a long-running service: its health check, or else
// its published ports accept connections from the browser.
func (r *composeRun) waitReady(name string) {
	s := r.p.Services[name]
	if s.HealthCheck != nil && !s.HealthCheck.Disable {
		r.waitHealthy(name)
		return
	}
	for _, c := range r.containers[name] {
		for _, port := range s.Ports {
			addr := fmt.Sprintf("%s:%d", c.ns.Addr, port.Target)
			r.poll(c, "port "+addr, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				conn, err := r.browserNS.DialContext(ctx, "tcp", addr)
				if err == nil {
					conn.Close()
				}
				return err
			})
		}
	}
}

// poll retries check until it passes, bounded; it fails the test when the
// container exits or the bound passes.
func (r *composeRun) poll(c *composeContainer, what string, check func() error) {
	r.t.Helper()
	testutil.WaitFor(r.t, 30*time.Second, c.name+"'s "+what, func() error {
		if c.proc.Exited() {
			r.t.Fatalf("%s exited while waiting for its %s:\n%s", c.name, what, c.proc.Output())
		}
		if err := check(); err != nil {
			return fmt.Errorf("%w\n%s", err, c.proc.Output())
		}
		return nil
	})
}

// browser is a cookie-jar client in the browser's namespace that trusts
// the development CA of the certs volume.
func (r *composeRun) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar,
		Transport: &http.Transport{
			DialContext:     r.browserNS.DialContext,
			TLSClientConfig: tlsConfig(r.caPool),
		},
		Timeout: 20 * time.Second,
	}
}

var e2eAuthRequestID = regexp.MustCompile(`authRequestID=([A-Za-z0-9_-]+)`)

// signIn opens target, follows the redirects to the dev IdP's login form
// and submits it; it returns the response after the redirects back.
func (r *composeRun) signIn(c *http.Client, target, issuer, email, name string) *http.Response {
	r.t.Helper()
	resp := e2eGet(r.t, c, target)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := e2eAuthRequestID.FindStringSubmatch(resp.Request.URL.String())
	if m == nil {
		r.t.Fatalf("%s: expected the IdP's login form, got %s %d:\n%s", target, resp.Request.URL, resp.StatusCode, body)
	}
	if !strings.HasPrefix(resp.Request.URL.String(), issuer+"/") {
		r.t.Fatalf("login form at %s, want under the issuer %s", resp.Request.URL, issuer)
	}
	resp, err := c.PostForm(issuer+"/login", url.Values{
		"authRequestID": {m[1]}, "email": {email}, "name": {name}, "groups": {""},
	})
	if err != nil {
		r.t.Fatalf("sign in as %s: %v", email, err)
	}
	return resp
}

func e2eGet(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	return testutil.BrowserGet(t, c, u)
}

func e2eReadJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", resp.Request.URL, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: %v: %s", resp.Request.URL, err, body)
	}
}
