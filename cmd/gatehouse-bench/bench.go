package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// System names, in the order they are loaded in every round.
const (
	sysBare      = "bare-proxy"
	sysAllInOne  = "gatehouse-all-in-one"
	sysSplit     = "gatehouse-split"
	sysSplitRd   = "gatehouse-split-redis"
	sysO2P       = "oauth2-proxy"
	sysO2PRedis  = "oauth2-proxy-redis"
	benchName    = "Alice"
	benchGroups  = "dev"
	readyTimeout = 30 * time.Second
)

// settings are the bench's flags.
type settings struct {
	Gatehouse   string        `json:"gatehouse"`
	OAuth2Proxy string        `json:"oauth2_proxy"`
	Out         string        `json:"out"`
	Rounds      int           `json:"rounds"`
	Duration    time.Duration `json:"duration_ns"`
	Warmup      time.Duration `json:"warmup_ns"`
	Connections []int         `json:"connections"`
	Threads     int           `json:"wrk_threads"`
	Systems     []string      `json:"systems"`
	LogLevel    string        `json:"gatehouse_log_level"`
	Email       string        `json:"email"`
	// Pprof, when set, is a directory: every gatehouse process serves Go's
	// profiler (GATEHOUSE_PPROF_ADDR) and round 1 saves a CPU profile of
	// each one over its whole run there (issue 21: profile first).
	Pprof string `json:"pprof_dir,omitempty"`
}

// system is one thing under load: the processes that serve a request, and
// how wrk reaches it.
type system struct {
	Name      string
	URL       string // wrk's target (127.0.0.1)
	Host      string // Host header (the route's host)
	Headers   []string
	Script    string  // wrk Lua script counting non-2xx answers
	Procs     []*proc // measured per request; the shared upstream included
	Gatehouse bool    // every request must carry a valid identity JWT upstream
	// ForwardedEmail: every request must reach the upstream with
	// X-Forwarded-Email of the signed-in user (oauth2-proxy).
	ForwardedEmail bool
}

// allSystems are the systems -systems knows, in the default round order.
var allSystems = []string{sysBare, sysAllInOne, sysSplit, sysSplitRd, sysO2P, sysO2PRedis}

// runResult is one wrk run of one system.
type runResult struct {
	System      string             `json:"system"`
	Connections int                `json:"connections"`
	Round       int                `json:"round"`
	Wrk         wrkResult          `json:"wrk"`
	CPUSeconds  map[string]float64 `json:"cpu_seconds"` // per process
	RSSBytes    map[string]int64   `json:"rss_bytes"`   // per process, at the end of the run
	WrkCPU      float64            `json:"wrk_cpu_seconds"`
	Upstream    upstreamStats      `json:"upstream"` // counters during the run
	Host        hostUsage          `json:"host_cpu"` // the machine's CPU during wrk's run
	// Unattributed is the share of the machine's CPU during the run that
	// neither the system's processes nor wrk used: other programs, and
	// interrupt time not charged to a process. High means a noisy run.
	Unattributed float64  `json:"unattributed_cpu_share"`
	Problems     []string `json:"problems,omitempty"`
}

func benchCommand(args []string) error {
	fs := flag.NewFlagSet("gatehouse-bench", flag.ContinueOnError)
	var s settings
	fs.StringVar(&s.Gatehouse, "gatehouse", "bin/gatehouse", "the gatehouse binary")
	fs.StringVar(&s.OAuth2Proxy, "oauth2-proxy", "", "the oauth2-proxy binary (make bench builds a pinned one into .tools); needed by the oauth2-proxy systems")
	fs.StringVar(&s.Out, "out", "bin/bench/results.json", "where to write the JSON results (logs and configs go beside it)")
	fs.IntVar(&s.Rounds, "rounds", 3, "rounds; each loads every system once per connection count")
	fs.DurationVar(&s.Duration, "duration", 10*time.Second, "length of each wrk run (whole seconds)")
	fs.DurationVar(&s.Warmup, "warmup", 2*time.Second, "unmeasured wrk run per system and connection count before round 1 (0: none)")
	conns := fs.String("connections", "32,256", "comma-separated connection counts")
	fs.IntVar(&s.Threads, "threads", 2, "wrk threads (the machine's 2 cores are shared with the systems)")
	systems := fs.String("systems", strings.Join(allSystems, ","), "systems to load, in round order")
	fs.StringVar(&s.LogLevel, "log-level", "", "gatehouse log_level (empty: gatehouse's default)")
	fs.StringVar(&s.Email, "email", "alice@example.com", "who signs in (the policy allows example.com; another domain must make the bench fail)")
	fs.StringVar(&s.Pprof, "pprof", "", "directory for CPU profiles of every gatehouse process during round 1 (profiling costs a few % of that round)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, c := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n <= 0 {
			return fmt.Errorf("-connections: bad count %q", c)
		}
		s.Connections = append(s.Connections, n)
	}
	for _, name := range strings.Split(*systems, ",") {
		name = strings.TrimSpace(name)
		if !has(allSystems, name) {
			return fmt.Errorf("-systems: unknown system %q (want some of %s)", name, strings.Join(allSystems, ", "))
		}
		s.Systems = append(s.Systems, name)
	}
	if s.Rounds < 1 || s.Duration < time.Second || s.Duration > 10*time.Minute {
		return errors.New("-rounds must be ≥ 1 and -duration between 1s and 10m")
	}
	if s.Threads < 1 {
		return errors.New("-threads must be ≥ 1")
	}
	ctx, stop := signalContext()
	defer stop()
	return runBench(ctx, s)
}

// ensureWrk installs wrk from Debian when it is missing.
func ensureWrk() error { return ensureDebian("wrk", "wrk") }

// ensureDebian installs Debian package pkg when program bin is missing.
func ensureDebian(bin, pkg string) error {
	if _, err := exec.LookPath(bin); err == nil {
		return nil
	}
	fmt.Printf("%s is missing: apt-get install -y %s\n", bin, pkg)
	cmd := exec.Command("apt-get", "install", "-y", pkg)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		upd := exec.Command("apt-get", "update")
		upd.Stdout, upd.Stderr = os.Stdout, os.Stderr
		if err := upd.Run(); err != nil {
			return fmt.Errorf("apt-get update: %w", err)
		}
		cmd = exec.Command("apt-get", "install", "-y", pkg)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get install -y %s: %w", pkg, err)
		}
	}
	_, err := exec.LookPath(bin)
	return err
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func runBench(ctx context.Context, s settings) error {
	if err := ensureWrk(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	outDir := filepath.Dir(s.Out)
	logDir := filepath.Join(outDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	needGatehouse := has(s.Systems, sysAllInOne) || has(s.Systems, sysSplit) || has(s.Systems, sysSplitRd)
	needO2P := has(s.Systems, sysO2P) || has(s.Systems, sysO2PRedis)
	needRedis := has(s.Systems, sysSplitRd) || has(s.Systems, sysO2PRedis)
	if needGatehouse || needO2P {
		if _, err := os.Stat(s.Gatehouse); err != nil {
			return fmt.Errorf("gatehouse binary (it also serves the dev IdP): %w (run make build)", err)
		}
	}
	if needO2P {
		if s.OAuth2Proxy == "" {
			return errors.New("the oauth2-proxy systems need -oauth2-proxy BINARY (make bench builds a pinned one into .tools)")
		}
		if _, err := os.Stat(s.OAuth2Proxy); err != nil {
			return fmt.Errorf("oauth2-proxy binary: %w (make bench builds it)", err)
		}
	}
	if needRedis {
		if err := ensureDebian("redis-server", "redis-server"); err != nil {
			return err
		}
	}

	// Addresses: upstream, its stats, the bare proxy, the dev IdP, Redis;
	// all-in-one (http, grpc, health); oauth2-proxy (cookie, redis); each
	// split system takes 8 more below.
	a, err := freeAddrs(10)
	if err != nil {
		return err
	}
	var (
		upAddr, statsAddr, bareAddr, idpAddr, redisAddr = a[0], a[1], a[2], a[3], a[4]
		aioHTTP, aioGRPC, aioHealth                     = a[5], a[6], a[7]
		o2pAddr, o2pRedisAddr                           = a[8], a[9]
	)
	splitAddrs := map[string][]string{}
	for _, name := range []string{sysSplit, sysSplitRd} {
		if has(s.Systems, name) {
			if splitAddrs[name], err = freeAddrs(8); err != nil {
				return err
			}
		}
	}
	routeURL := func(httpAddr string) string { return "http://" + benchRouteHost + ":" + port(httpAddr) + "/" }

	var procs []*proc
	defer func() {
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Go(p.stop)
		}
		wg.Wait()
	}()
	start := func(name, path string, args ...string) (*proc, error) {
		p, err := startProc(name, path, args, nil, logDir)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		return p, nil
	}
	if s.Pprof != "" {
		if err := os.MkdirAll(s.Pprof, 0o755); err != nil {
			return err
		}
	}
	// startGatehouse starts a gatehouse service process, with Go's
	// profiler on a loopback port of its own when -pprof asks for it.
	startGatehouse := func(name, path string, args ...string) (*proc, error) {
		var env []string
		pprofAddr := ""
		if s.Pprof != "" {
			a, err := freeAddrs(1)
			if err != nil {
				return nil, err
			}
			pprofAddr = a[0]
			env = append(env, "GATEHOUSE_PPROF_ADDR="+pprofAddr)
		}
		p, err := startProc(name, path, args, env, logDir)
		if err != nil {
			return nil, err
		}
		p.PprofAddr = pprofAddr
		procs = append(procs, p)
		return p, nil
	}

	// The upstream, shared by every system; it checks identity JWTs against
	// the JWKS of every gatehouse system, and oauth2-proxy's
	// X-Forwarded-Email.
	upArgs := []string{"upstream", "--address", upAddr, "--stats-address", statsAddr, "--email", s.Email, "--audience", benchRouteHost}
	if has(s.Systems, sysAllInOne) {
		upArgs = append(upArgs, "--jwks", strings.TrimSuffix(routeURL(aioHTTP), "/")+"/.well-known/pomerium/jwks.json")
	}
	for _, sa := range splitAddrs {
		upArgs = append(upArgs, "--jwks", strings.TrimSuffix(routeURL(sa[5]), "/")+"/.well-known/pomerium/jwks.json")
	}
	up, err := start("upstream", self, upArgs...)
	if err != nil {
		return err
	}
	statsURL := "http://" + statsAddr + "/stats"
	if err := waitHTTP(ctx, up, statsURL, readyTimeout); err != nil {
		return err
	}
	upstreamURL := "http://" + upAddr

	var redis *proc
	redisURL := "redis://" + redisAddr
	if needRedis {
		redis, err = start("redis", "redis-server", "--bind", "127.0.0.1", "--port", port(redisAddr),
			"--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", logDir)
		if err != nil {
			return err
		}
		if err := waitRedis(ctx, redis, redisAddr, readyTimeout); err != nil {
			return err
		}
	}

	systems := map[string]*system{}
	if has(s.Systems, sysBare) {
		bp, err := start("bare-proxy", self, "bare-proxy", "--address", bareAddr, "--to", upstreamURL)
		if err != nil {
			return err
		}
		if err := waitHTTP(ctx, bp, "http://"+bareAddr+"/", readyTimeout); err != nil {
			return err
		}
		systems[sysBare] = &system{Name: sysBare, URL: "http://" + bareAddr + "/", Procs: []*proc{bp, up}}
	}

	o2pConf := map[string]oauth2ProxyConfig{}
	if has(s.Systems, sysO2P) {
		o2pConf[sysO2P] = oauth2ProxyConfig{Address: o2pAddr}
	}
	if has(s.Systems, sysO2PRedis) {
		o2pConf[sysO2PRedis] = oauth2ProxyConfig{Address: o2pRedisAddr, RedisURL: redisURL}
	}

	if needGatehouse || needO2P {
		gh, err := filepath.Abs(s.Gatehouse)
		if err != nil {
			return err
		}
		idpURL := "http://" + idpAddr
		idpArgs := []string{"dev-idp", "--address", idpAddr, "--issuer", idpURL,
			"--client-id", "gatehouse", "--client-secret", idpClientSecret, "--log-level", "warn"}
		idpArgs = append(idpArgs, "--redirect-uri", "http://authenticate.localhost:"+port(aioHTTP)+"/oauth2/callback")
		for _, sa := range splitAddrs {
			idpArgs = append(idpArgs, "--redirect-uri", "http://authenticate.localhost:"+port(sa[0])+"/oauth2/callback")
		}
		for _, c := range o2pConf {
			idpArgs = append(idpArgs, "--redirect-uri", c.RedirectURL())
		}
		idp, err := start("dev-idp", gh, idpArgs...)
		if err != nil {
			return err
		}
		if err := waitHTTP(ctx, idp, idpURL+"/healthz", readyTimeout); err != nil {
			return err
		}

		if has(s.Systems, sysAllInOne) {
			common := gatehouseCommon{
				SharedSecret: newSecret(), CookieSecret: newSecret(),
				AuthenticateURL: "http://authenticate.localhost:" + port(aioHTTP),
				IdPURL:          idpURL, RouteFrom: strings.TrimSuffix(routeURL(aioHTTP), "/"),
				UpstreamURL: upstreamURL, LogLevel: s.LogLevel,
			}
			path, err := writeConfig(outDir, "all-in-one", common.config(gatehouseProcess{
				Services: "all", Address: aioHTTP, GRPCAddress: aioGRPC, HealthAddress: aioHealth,
			}))
			if err != nil {
				return err
			}
			p, err := startGatehouse("gatehouse", gh, "--config", path)
			if err != nil {
				return err
			}
			if err := waitHTTP(ctx, p, "http://"+aioHealth+"/readyz", readyTimeout); err != nil {
				return err
			}
			systems[sysAllInOne] = &system{Name: sysAllInOne, URL: "http://" + aioHTTP + "/",
				Host: benchRouteHost + ":" + port(aioHTTP), Procs: []*proc{p, up}, Gatehouse: true}
		}

		// The split systems: databroker+authenticate, authorize and proxy
		// as three processes; gatehouse-split-redis keeps the databroker's
		// records in Redis instead of memory.
		for _, name := range []string{sysSplit, sysSplitRd} {
			sa := splitAddrs[name]
			if sa == nil {
				continue
			}
			var (
				dbHTTP, dbGRPC, dbHealth = sa[0], sa[1], sa[2]
				azGRPC, azHealth         = sa[3], sa[4]
				pxHTTP, pxGRPC, pxHealth = sa[5], sa[6], sa[7]
			)
			common := gatehouseCommon{
				SharedSecret: newSecret(), CookieSecret: newSecret(),
				AuthenticateURL: "http://authenticate.localhost:" + port(dbHTTP),
				IdPURL:          idpURL, RouteFrom: strings.TrimSuffix(routeURL(pxHTTP), "/"),
				UpstreamURL: upstreamURL, LogLevel: s.LogLevel,
			}
			prefix, suffix := "", ""
			if name == sysSplitRd {
				common.StorageURL = redisURL
				prefix, suffix = "redis-", "-redis"
			}
			parts := []struct {
				name string
				p    gatehouseProcess
			}{
				{"databroker+authenticate", gatehouseProcess{Services: "databroker,authenticate",
					Address: dbHTTP, GRPCAddress: dbGRPC, HealthAddress: dbHealth}},
				{"authorize", gatehouseProcess{Services: "authorize",
					GRPCAddress: azGRPC, HealthAddress: azHealth, DataBrokerURL: "http://" + dbGRPC}},
				{"proxy", gatehouseProcess{Services: "proxy", Address: pxHTTP, GRPCAddress: pxGRPC, HealthAddress: pxHealth,
					AuthorizeURL: "http://" + azGRPC, DataBrokerURL: "http://" + dbGRPC}},
			}
			var sp []*proc
			for _, part := range parts {
				path, err := writeConfig(outDir, "split"+suffix+"-"+strings.ReplaceAll(part.name, "+", "-"), common.config(part.p))
				if err != nil {
					return err
				}
				p, err := startGatehouse(prefix+part.name, gh, "--config", path)
				if err != nil {
					return err
				}
				if err := waitHTTP(ctx, p, "http://"+part.p.HealthAddress+"/readyz", readyTimeout); err != nil {
					return err
				}
				sp = append(sp, p)
			}
			// Measured in request order: proxy, authorize, then the rest.
			measured := []*proc{sp[2], sp[1], sp[0]}
			if name == sysSplitRd {
				measured = append(measured, redis)
			}
			systems[name] = &system{Name: name, URL: "http://" + pxHTTP + "/",
				Host: benchRouteHost + ":" + port(pxHTTP), Procs: append(measured, up), Gatehouse: true}
		}

		// A real signed-in session for each gatehouse system, and one
		// request through to check the upstream gets a valid identity JWT.
		for _, name := range []string{sysAllInOne, sysSplit, sysSplitRd} {
			sys := systems[name]
			if sys == nil {
				continue
			}
			route := "http://" + sys.Host + "/"
			handle, err := programmaticLogin(ctx, route, login{Email: s.Email, Name: benchName, Groups: benchGroups})
			if err != nil {
				return fmt.Errorf("%s: sign in: %w", name, err)
			}
			sys.Headers = []string{"Authorization: Bearer Pomerium-" + handle}
			if err := checkThrough(ctx, sys, statsURL); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fmt.Printf("%s: signed in as %s; a request reaches the upstream with a valid identity JWT\n", name, s.Email)
		}

		// oauth2-proxy, the peer a user would pick instead: started, signed
		// in through the same dev IdP, one request checked through.
		for _, name := range []string{sysO2P, sysO2PRedis} {
			c, ok := o2pConf[name]
			if !ok {
				continue
			}
			c.UpstreamURL, c.IdPURL, c.CookieSecret = upstreamURL, idpURL, newSecret()[:32]
			p, err := start(name, s.OAuth2Proxy, c.args()...)
			if err != nil {
				return err
			}
			if err := waitHTTP(ctx, p, "http://"+c.Address+"/ping", readyTimeout); err != nil {
				return err
			}
			measured := []*proc{p}
			if c.RedisURL != "" {
				measured = append(measured, redis)
			}
			sys := &system{Name: name, URL: "http://" + c.Address + "/", Procs: append(measured, up), ForwardedEmail: true}
			cookie, err := oauth2ProxyLogin(ctx, "http://"+c.Address, login{Email: s.Email, Name: benchName, Groups: benchGroups})
			if err != nil {
				return fmt.Errorf("%s: sign in: %w", name, err)
			}
			sys.Headers = []string{"Cookie: " + cookie}
			if err := checkThrough(ctx, sys, statsURL); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			systems[name] = sys
			fmt.Printf("%s: signed in as %s; a request reaches the upstream with X-Forwarded-Email %s\n", name, s.Email, s.Email)
		}
	}
	if sys := systems[sysBare]; sys != nil {
		if err := checkThrough(ctx, sys, statsURL); err != nil {
			return fmt.Errorf("%s: %w", sysBare, err)
		}
	}

	var order []*system
	for _, name := range s.Systems {
		order = append(order, systems[name])
	}
	hz := clkTck()
	script := filepath.Join(outDir, "wrk-status.lua")
	if err := os.WriteFile(script, []byte(statusScript), 0o644); err != nil {
		return err
	}
	for _, sys := range order {
		sys.Script = script
	}
	started := time.Now()

	if s.Warmup > 0 {
		for _, c := range s.Connections {
			for _, sys := range order {
				fmt.Printf("warm-up: %s, %d connections, %s\n", sys.Name, c, s.Warmup)
				if _, err := measure(ctx, s, sys, c, 0, s.Warmup, statsURL, hz); err != nil {
					return err
				}
			}
		}
	}
	var runs []runResult
	for round := 1; round <= s.Rounds; round++ {
		for _, c := range s.Connections {
			for _, sys := range order {
				if err := ctx.Err(); err != nil {
					return err
				}
				r, err := measure(ctx, s, sys, c, round, s.Duration, statsURL, hz)
				if err != nil {
					return err
				}
				fmt.Printf("round %d/%d  %-22s c=%-4d %9.0f req/s  p50 %-9s p99 %-9s other CPU %3.0f%%  %s\n", round, s.Rounds, sys.Name, c,
					r.Wrk.RequestsPerS, fmtDur(r.Wrk.P50), fmtDur(r.Wrk.P99), r.Unattributed*100, problemsText(r.Problems))
				runs = append(runs, r)
			}
		}
	}

	rep := buildReport(s, runs, order, started)
	if err := printTable(os.Stdout, rep); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.Out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nresults: %s (logs and configs in %s)\n", s.Out, outDir)
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d problem(s):\n  %s", len(rep.Failures), strings.Join(rep.Failures, "\n  "))
	}
	return nil
}

func problemsText(p []string) string {
	if len(p) == 0 {
		return "ok"
	}
	return "FAIL: " + strings.Join(p, "; ")
}

// checkThrough sends one request through sys as wrk will and checks the
// answer is the upstream's 200 and, for gatehouse, that the upstream
// counted a valid identity JWT for it.
func checkThrough(ctx context.Context, sys *system, statsURL string) error {
	before, err := getStats(ctx, statsURL)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sys.URL, nil)
	if err != nil {
		return err
	}
	if sys.Host != "" {
		req.Host = sys.Host
	}
	for _, h := range sys.Headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	c := localhostClient(nil, 10*time.Second)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("check request: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != string(upstreamBody) {
		return fmt.Errorf("check request: %s, body %q; want 200 and the upstream's body", resp.Status, truncate(string(body), 300))
	}
	after, err := getStats(ctx, statsURL)
	if err != nil {
		return err
	}
	d := after.sub(before)
	switch {
	case d.Requests != 1:
		return fmt.Errorf("check request: upstream counted %d requests, want 1", d.Requests)
	case sys.Gatehouse && d.JWTValid != 1:
		return fmt.Errorf("check request: upstream saw no valid identity JWT (valid %d, invalid %d, missing %d; %s)",
			d.JWTValid, d.JWTInvalid, d.JWTMissing, d.LastError)
	case sys.ForwardedEmail && d.EmailValid != 1:
		return fmt.Errorf("check request: upstream saw no X-Forwarded-Email of the signed-in user (valid %d, invalid %d, missing %d; %s)",
			d.EmailValid, d.EmailInvalid, d.JWTMissing, d.LastError)
	}
	return nil
}

func getStats(ctx context.Context, url string) (upstreamStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var s upstreamStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, fmt.Errorf("upstream stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("upstream stats: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// settle waits until the upstream's request count stops moving (unchanged
// over 200 ms; at most 10 s) and returns its counters.
func settle(ctx context.Context, statsURL string) (upstreamStats, error) {
	deadline := time.Now().Add(10 * time.Second)
	last, err := getStats(ctx, statsURL)
	if err != nil {
		return last, err
	}
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		cur, err := getStats(ctx, statsURL)
		if err != nil {
			return cur, err
		}
		if cur.Requests == last.Requests {
			return cur, nil
		}
		last = cur
	}
	return last, fmt.Errorf("upstream still receiving requests 10 s after wrk stopped")
}

// measure loads sys with wrk for d and returns what it measured, with the
// checks every run must pass listed in Problems.
func measure(ctx context.Context, s settings, sys *system, conns, round int, d time.Duration, statsURL string, hz int64) (runResult, error) {
	r := runResult{System: sys.Name, Connections: conns, Round: round, CPUSeconds: map[string]float64{}, RSSBytes: map[string]int64{}}
	before, err := readAllProcTimes(sys.Procs)
	if err != nil {
		return r, err
	}
	st0, err := getStats(ctx, statsURL)
	if err != nil {
		return r, err
	}
	h0, err := readHostTimes()
	if err != nil {
		return r, err
	}
	w := wrkRun{URL: sys.URL, Host: sys.Host, Headers: sys.Headers, Script: sys.Script, Threads: s.Threads, Connections: conns, Duration: d}
	var profiles sync.WaitGroup
	if s.Pprof != "" && round == 1 {
		for _, p := range sys.Procs {
			if p.PprofAddr == "" {
				continue
			}
			file := filepath.Join(s.Pprof, fmt.Sprintf("%s-c%d-%s.pprof", sys.Name, conns, strings.ReplaceAll(p.Name, "+", "-")))
			profiles.Go(func() {
				if err := saveCPUProfile(ctx, p.PprofAddr, d, file); err != nil {
					fmt.Fprintf(os.Stderr, "gatehouse-bench: profile of %s: %v\n", p.Name, err)
				}
			})
		}
	}
	out, err := w.run(ctx)
	profiles.Wait()
	if err != nil {
		return r, err
	}
	h1, herr := readHostTimes()
	procT1 := make([]procTimes, len(sys.Procs))
	for i, p := range sys.Procs {
		procT1[i], _ = readProcTimes(p.PID())
		if rss, err := readRSS(p.PID()); err == nil {
			r.RSSBytes[p.Name] = rss
		}
	}
	if herr == nil {
		r.Host = usageBetween(h0, h1)
		used := float64(out.CPU) / float64(time.Second) * float64(hz)
		for i := range sys.Procs {
			used += float64(procT1[i].Total() - before[i].Total())
		}
		if r.Host.TotalTicks > 0 {
			r.Unattributed = max(0, float64(r.Host.BusyTicks)-used) / float64(r.Host.TotalTicks)
		}
	}
	// Requests still in flight inside the system when wrk stopped reach
	// the upstream a little later: wait until it is quiet, so they count
	// (and cost CPU) in this run rather than the next.
	st1, err := settle(ctx, statsURL)
	if err != nil {
		return r, err
	}
	after, err := readAllProcTimes(sys.Procs)
	if err != nil {
		return r, err
	}
	for i, p := range sys.Procs {
		r.CPUSeconds[p.Name] = ticksToDuration(after[i].Total()-before[i].Total(), hz).Seconds()
	}
	r.Wrk, r.WrkCPU, r.Upstream = out.wrkResult, out.CPU.Seconds(), st1.sub(st0)
	for _, p := range sys.Procs {
		p.trimLog()
	}

	u := r.Upstream
	if r.Wrk.Non2xx > 0 || r.Wrk.NotOK > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d non-2xx answers (%d of them ≥ 400)", max(r.Wrk.NotOK, r.Wrk.Non2xx), r.Wrk.Non2xx))
	}
	// Every answer wrk counted must have come from the upstream (a 3xx
	// from gatehouse would not reach it; wrk counts 3xx as success). The
	// upstream may have seen up to one in-flight request per connection
	// more than wrk counted when it stopped.
	if u.Requests < r.Wrk.Requests {
		r.Problems = append(r.Problems, fmt.Sprintf("wrk counted %d answers but the upstream saw only %d requests", r.Wrk.Requests, u.Requests))
	}
	if sys.Gatehouse {
		if u.JWTInvalid > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%d invalid identity JWTs at the upstream (%s)", u.JWTInvalid, u.LastError))
		}
		if u.JWTMissing > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%d requests reached the upstream without an identity JWT", u.JWTMissing))
		}
		if u.JWTValid < r.Wrk.Requests {
			r.Problems = append(r.Problems, fmt.Sprintf("only %d valid identity JWTs for %d answers", u.JWTValid, r.Wrk.Requests))
		}
	}
	if sys.ForwardedEmail {
		if u.EmailInvalid > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%d requests reached the upstream as someone else (%s)", u.EmailInvalid, u.LastError))
		}
		if u.JWTMissing > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%d requests reached the upstream without X-Forwarded-Email", u.JWTMissing))
		}
		if u.EmailValid < r.Wrk.Requests {
			r.Problems = append(r.Problems, fmt.Sprintf("only %d requests with the signed-in user's X-Forwarded-Email for %d answers", u.EmailValid, r.Wrk.Requests))
		}
	}
	if r.Wrk.Requests == 0 {
		r.Problems = append(r.Problems, "no requests completed")
	}
	if round > 0 {
		return r, nil
	}
	// Warm-up runs are not reported, but their problems are.
	if len(r.Problems) > 0 {
		return r, fmt.Errorf("warm-up of %s at %d connections: %s", sys.Name, conns, strings.Join(r.Problems, "; "))
	}
	return r, nil
}

// saveCPUProfile asks the Go profiler at addr for a CPU profile over d
// (whole seconds, at least one) and writes it to file.
func saveCPUProfile(ctx context.Context, addr string, d time.Duration, file string) error {
	secs := max(1, int(d/time.Second))
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profiler answered %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

// machine describes where the bench ran.
type machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go"`
	Kernel    string `json:"kernel,omitempty"`
	CPUModel  string `json:"cpu_model,omitempty"`
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
