//go:build chaos

// The chaos suite (`make chaos`, run by `make test` and CI): the split
// deployment of split_e2e_test.go on Redis under a modest, fixed load,
// with one fault per scenario. Every request is recorded; a request counts
// as failed only if it also fails when retried once on the other proxy,
// as a load balancer would. A failure prints the timeline of faults and
// failed or retried requests.
//
// Rates are low (20 requests/s) so that the suite is stable on a 2-core
// machine shared with other work; every wait is bounded. The only
// wall-clock assertion is the fail-closed bound: with both
// authorizes down the proxy answers 503 within 100 ms.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

const (
	// chaosRate is the load's requests per second, over both proxies.
	chaosRate = 20
	// underFault is how long the load runs with the fault in place, and
	// afterHeal how long it runs once the fault is healed.
	underFault = 3 * time.Second
	afterHeal  = 2 * time.Second
	// recoveryBound bounds how long a healed component may take to be
	// back (ready, its dependencies reported ok): generous for a loaded
	// 2-core machine, yet far below anything an operator would call an
	// outage.
	recoveryBound = 20 * time.Second
	// failClosedBound is the bound on a 503 with no authorize.
	failClosedBound = 100 * time.Millisecond
)

// chaos is the deployment under test and the signed-in user whose session
// the load uses.
type chaos struct {
	*deployment
	alice *http.Client
}

func startChaos(t *testing.T) *chaos {
	t.Helper()
	// A short grace period, so the rolling restart exercises it without
	// making the suite slow.
	d := startDeployment(t, "redis", func(b *configtest.Builder) { b.Set("shutdown_grace_period", "1s") })
	c := &chaos{deployment: d, alice: d.browser()}
	resp := d.signIn(c.alice, d.proxyURL("proxy-a", "/api/user"), "alice@example.com", "Alice Liddell", "admins")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	// The load never follows a redirect: a redirect to sign in is a lost
	// session, not a success.
	c.alice.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// newLoad is the load of one scenario: alice's GET /api/user on both
// proxies, each answer checked to be Grafana's answer for alice.
func (c *chaos) newLoad() *testutil.Load {
	return &testutil.Load{
		Targets: []string{c.proxyURL("proxy-a", "/api/user"), c.proxyURL("proxy-b", "/api/user")},
		Client:  c.alice,
		Rate:    chaosRate,
		Check: func(status int, body []byte) error {
			var u struct{ Email string }
			if err := json.Unmarshal(body, &u); err != nil || u.Email != "alice@example.com" {
				return fmt.Errorf("not alice's Grafana answer (lost session?): %.200s", body)
			}
			return nil
		},
	}
}

// scenario runs the load, injects fault, holds it for underFault, heals
// and holds for afterHeal, then requires that no request failed.
func (c *chaos) scenario(t *testing.T, fault, heal func(l *testutil.Load)) {
	t.Helper()
	l := c.newLoad()
	l.Start()
	stopped := false
	defer func() {
		if !stopped {
			l.Stop()
		}
	}()
	// A second of load before the fault: the baseline.
	time.Sleep(time.Second)
	fault(l)
	time.Sleep(underFault)
	heal(l)
	time.Sleep(afterHeal)
	l.Stop()
	stopped = true
	failed := l.Failed()
	t.Logf("%d requests, %d retried on the other proxy, %d failed", len(l.Records()), l.Retried(), len(failed))
	if len(l.Records()) < chaosRate*int(underFault/time.Second) {
		t.Errorf("only %d requests were sent", len(l.Records()))
	}
	if len(failed) > 0 {
		t.Fatalf("%d requests failed:\n%s", len(failed), l.Timeline())
	}
	if n := c.upstream.refused.Load(); n > 0 {
		t.Fatalf("%d requests reached Grafana without a valid identity JWT", n)
	}
}

// kill ends a process at once (SIGKILL): no drain.
func (c *chaos) kill(l *testutil.Load, name string) {
	c.procs[name].proc.Kill()
	l.Event("killed %s", name)
}

// restart starts a stopped process and waits until it is ready.
func (c *chaos) restart(t *testing.T, l *testutil.Load, name string) {
	t.Helper()
	c.start(name)
	l.Event("started %s", name)
	p := c.procs[name]
	testutil.WaitHTTP(t, "http://"+p.health+"/readyz", recoveryBound, p.proc)
	l.Event("%s ready", name)
}

// requireReady requires name's /readyz to answer 200 now.
func (c *chaos) requireReady(t *testing.T, name string) readyz {
	t.Helper()
	r := getReadyz(t, c.procs[name].health)
	if r.code != http.StatusOK {
		t.Fatalf("%s /readyz: %d %+v", name, r.code, r)
	}
	return r
}

// waitDependency waits until name's /readyz reports dep as want ("ok" or
// "unavailable").
func (c *chaos) waitDependency(t *testing.T, l *testutil.Load, name, dep, want string) {
	t.Helper()
	testutil.WaitFor(t, recoveryBound, fmt.Sprintf("%s to report %s %s", name, dep, want), func() error {
		r := getReadyz(t, c.procs[name].health)
		if !strings.HasPrefix(r.Dependencies[dep], want) {
			return fmt.Errorf("/readyz: %d %+v", r.code, r)
		}
		return nil
	})
	l.Event("%s reports %s %s", name, dep, want)
}

func TestChaos(t *testing.T) {
	start := time.Now()
	c := startChaos(t)
	t.Logf("deployment up and alice signed in in %v", time.Since(start).Round(time.Millisecond))

	t.Run("kill one authorize", func(t *testing.T) {
		c.scenario(t,
			func(l *testutil.Load) { c.kill(l, "authorize-1") },
			func(l *testutil.Load) { c.restart(t, l, "authorize-1") })
	})

	t.Run("kill one databroker", func(t *testing.T) {
		c.scenario(t,
			func(l *testutil.Load) { c.kill(l, "databroker-1") },
			func(l *testutil.Load) { c.restart(t, l, "databroker-1") })
	})

	// Issue 13.1: with every databroker down, both authorizes stay ready
	// (readiness does not follow storage) and keep serving from their
	// synced caches.
	t.Run("every databroker down", func(t *testing.T) {
		c.scenario(t,
			func(l *testutil.Load) {
				c.kill(l, "databroker-1")
				c.kill(l, "databroker-2")
				for _, az := range []string{"authorize-1", "authorize-2"} {
					c.waitDependency(t, l, az, "databroker", "unavailable")
					c.requireReady(t, az)
				}
			},
			func(l *testutil.Load) {
				for _, az := range []string{"authorize-1", "authorize-2"} {
					c.requireReady(t, az)
				}
				c.restart(t, l, "databroker-1")
				c.restart(t, l, "databroker-2")
				for _, az := range []string{"authorize-1", "authorize-2"} {
					c.waitDependency(t, l, az, "databroker", "ok")
				}
			})
	})

	// Redis stops and starts again, reloading its append-only file: the
	// databrokers stay ready, nothing fails, and the session survives.
	t.Run("restart Redis from its AOF", func(t *testing.T) {
		c.scenario(t,
			func(l *testutil.Load) {
				c.redis.Stop()
				l.Event("Redis stopped")
				c.waitDependency(t, l, "databroker-1", "databroker storage", "unavailable")
				c.requireReady(t, "databroker-1")
			},
			func(l *testutil.Load) {
				c.redis.Start()
				l.Event("Redis started (AOF reloaded)")
				c.waitDependency(t, l, "databroker-1", "databroker storage", "ok")
				c.waitDependency(t, l, "databroker-2", "databroker storage", "ok")
			})
	})

	// The IdP goes away: signed-in users do not notice.
	t.Run("IdP down", func(t *testing.T) {
		c.scenario(t,
			func(l *testutil.Load) { c.idp.Kill(); l.Event("IdP killed") },
			func(l *testutil.Load) {
				c.idp = testutil.StartProcess(c.t, "dev-idp", c.bin, c.idpArgs)
				testutil.WaitHTTP(t, c.idpURL+"/.well-known/openid-configuration", recoveryBound, c.idp)
				l.Event("IdP back")
			})
	})

	// A proxy dies: the load balancer's retry on the other proxy hides it.
	t.Run("kill one proxy", func(t *testing.T) {
		c.scenario(t,
			func(l *testutil.Load) { c.kill(l, "proxy-a") },
			func(l *testutil.Load) { c.restart(t, l, "proxy-a") })
	})

	// Every process, one after another: SIGTERM (fail /readyz, keep
	// serving for shutdown_grace_period, drain), start, wait ready.
	t.Run("rolling restart", func(t *testing.T) {
		order := []string{"databroker-1", "databroker-2", "authorize-1", "authorize-2", "authenticate", "proxy-a", "proxy-b"}
		c.scenario(t,
			func(l *testutil.Load) {
				for _, name := range order {
					l.Event("SIGTERM %s", name)
					if err := c.procs[name].proc.Signal(syscall.SIGTERM, recoveryBound); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					l.Event("%s exited", name)
					c.restart(t, l, name)
				}
			},
			func(l *testutil.Load) {})
		// Sessions live in Redis: alice's still works (the load checked
		// it), and a new sign-in works after the restart.
		bob := c.browser()
		resp := c.signIn(bob, c.proxyURL("proxy-b", "/api/user"), "bob@example.com", "Bob", "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in after the rolling restart: %d", resp.StatusCode)
		}
	})

	// Both authorizes down: the proxies fail closed, at once, and nothing
	// reaches Grafana.
	t.Run("both authorizes down", func(t *testing.T) {
		before := c.upstream.total.Load()
		c.procs["authorize-1"].proc.Kill()
		c.procs["authorize-2"].proc.Kill()
		for _, proxy := range []string{"proxy-a", "proxy-b"} {
			u := c.proxyURL(proxy, "/api/user")
			// The first answers may still meet connections that are
			// closing; from the first 503 on, every answer is checked.
			testutil.WaitFor(t, recoveryBound, proxy+" to fail closed", func() error {
				resp, err := c.alice.Get(u)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			})
			var slow []string
			for i := 0; i < 20; i++ {
				start := time.Now()
				resp, err := c.alice.Get(u)
				took := time.Since(start)
				if err != nil {
					t.Fatalf("%s with no authorize: %v", proxy, err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("%s with no authorize: %d, want 503", proxy, resp.StatusCode)
				}
				if took > failClosedBound {
					slow = append(slow, took.Round(time.Millisecond).String())
				}
				time.Sleep(time.Second / chaosRate)
			}
			if len(slow) > 0 {
				t.Errorf("%s: %d of 20 fail-closed answers took more than %v: %v", proxy, len(slow), failClosedBound, slow)
			}
		}
		if n := c.upstream.total.Load() - before; n != 0 {
			t.Errorf("%d requests reached Grafana with no authorize running", n)
		}
		if n := c.upstream.refused.Load(); n != 0 {
			t.Errorf("%d requests reached Grafana without a valid identity JWT", n)
		}
	})
	t.Logf("chaos suite ran in %v", time.Since(start).Round(time.Millisecond))
}
