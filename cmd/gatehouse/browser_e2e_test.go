package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/devidp"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// chromiumPath is Debian's chromium package (`apt-get install -y chromium`;
// .ci/run installs it).
const chromiumPath = "/usr/bin/chromium"

// browserStepTimeout bounds every browser step (a navigation, a wait).
const browserStepTimeout = 30 * time.Second

// lockedBuffer collects Chromium's output, written from chromedp's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// browser is one headless Chromium with a fresh profile, driven by chromedp.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// requireChromium fails the test (never skips it) when Chromium is not
// installed: a browser is the user of gatehouse's sign-in, and CI installs
// one.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is not installed (%v): install it with `apt-get install -y chromium` "+
			"(Debian's package, at %s; .ci/run installs it for CI)", err, chromiumPath)
	}
}

// startBrowser starts Chromium and stops it when the test ends.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	requireChromium(t)
	// The profile directory is made before the browser's cleanup is
	// registered, so it is removed after Chromium has exited.
	profile := t.TempDir()
	var output lockedBuffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// This machine's network is closed: without these, Chromium's
		// own background connections are refused and get in the way.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1000),
		chromedp.CombinedOutput(&output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc() // waits for Chromium to exit
		if t.Failed() {
			// Chromium is chatty (D-Bus is absent here): its last lines.
			if out := strings.TrimSpace(output.String()); out != "" {
				if len(out) > 4000 {
					out = "…" + out[len(out)-4000:]
				}
				t.Logf("chromium output:\n%s", out)
			}
		}
	})
	// The first Run starts the browser and binds it to its context, which
	// must not carry a timeout: bound the start with a timer instead.
	timer := time.AfterFunc(browserStepTimeout, cancelCtx)
	err := chromedp.Do(ctx)
	timer.Stop()
	if err != nil {
		t.Fatalf("starting Chromium: %v\n%s", err, output.String())
	}
	return &browser{t: t, ctx: ctx}
}

// do runs actions within browserStepTimeout and fails the test with what
// the browser shows when they fail.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.describe())
	}
}

// eval evaluates a JavaScript expression into T, within browserStepTimeout.
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.describe())
	}
	return v
}

// describe says where the browser is and what the page says, for failures.
func (b *browser) describe() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return fmt.Sprintf("(the browser cannot say where it is: %v)", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		text = fmt.Sprintf("(no page text: %v)", err)
	}
	if len(text) > 3000 {
		text = text[:3000] + "…"
	}
	return fmt.Sprintf("browser at %s, showing:\n%s", redactURL(loc), text)
}

// redactURL hides token values (id_token_hint and the like) in u for the
// test's output.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.RawQuery == "" {
		return u
	}
	q := p.Query()
	for k, vs := range q {
		for i, v := range vs {
			if len(v) > 64 {
				vs[i] = v[:8] + "-REDACTED"
			}
		}
		q[k] = vs
	}
	p.RawQuery = q.Encode()
	return p.String()
}

// location returns the address of the page the browser shows.
func (b *browser) location() string {
	b.t.Helper()
	return eval[string](b, "reading the location", `location.href`)
}

// waitLeft waits until the browser shows a fully loaded page whose address
// does not start with prefix, and returns that address. Navigations in
// between make single evaluations fail: those are retried.
func (b *browser) waitLeft(prefix string) string {
	b.t.Helper()
	var loc string
	testutil.WaitFor(b.t, browserStepTimeout, "the browser to leave "+prefix, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		defer cancel()
		var err error
		loc, err = chromedp.Run(ctx, chromedp.Evaluate[string](
			`document.readyState === 'complete' ? location.href : ''`))
		switch {
		case err != nil:
			return err
		case loc == "":
			return errors.New("page still loading")
		case strings.HasPrefix(loc, prefix):
			return stillAt{b, loc}
		}
		return nil
	})
	return loc
}

// stillAt is waitLeft's error while the browser stays on a page; it
// describes the browser only when printed, as a failure is.
type stillAt struct {
	b   *browser
	loc string
}

func (e stillAt) Error() string { return "still at " + e.loc + "\n" + e.b.describe() }

// cookies returns the browser's cookies for u.
func (b *browser) cookies(u string) []*network.Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
	if err != nil {
		b.t.Fatalf("reading the cookies of %s: %v", u, err)
	}
	return res.Cookies
}

// setCookie puts c back into the browser for u.
func (b *browser) setCookie(u string, c *network.Cookie) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
		Name: c.Name, Value: c.Value, URL: u, Path: c.Path, HTTPOnly: &c.HTTPOnly, SameSite: c.SameSite,
	})
	if err != nil {
		b.t.Fatalf("setting the cookie %s for %s: %v", c.Name, u, err)
	}
}

// screenshot saves a full-page PNG into the test's temporary directory and,
// when GATEHOUSE_SCREENSHOT_DIR is set, copies it there for a person to
// look at.
func (b *browser) screenshot(dir, name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if out := os.Getenv("GATEHOUSE_SCREENSHOT_DIR"); out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			b.t.Fatal(err)
		}
		path := filepath.Join(out, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
		b.t.Logf("screenshot: %s", path)
	}
}

// Widths the pages are judged at: a desktop window and a phone.
const (
	desktopWidth = 1280
	phoneWidth   = 390
)

// screenshots saves the page at desktop and phone widths (name-desktop.png,
// name-phone.png) and fails the test when, on the phone, the page is wider
// than the screen (sideways scrolling).
func (b *browser) screenshots(dir, name string) {
	b.t.Helper()
	b.do("desktop width", chromedp.EmulateViewport(desktopWidth, 900))
	b.screenshot(dir, name+"-desktop.png")
	b.do("phone width", chromedp.EmulateViewport(phoneWidth, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	if over := eval[float64](b, "measuring the page on a phone",
		`document.documentElement.scrollWidth - document.documentElement.clientWidth`); over > 0 {
		b.t.Errorf("%s: on a %dpx-wide phone the page is %.0fpx too wide (sideways scrolling)\n%s", name, phoneWidth, over, b.describe())
	}
	b.screenshot(dir, name+"-phone.png")
	b.do("back to desktop width", chromedp.EmulateViewport(desktopWidth, 1000))
}

// demoPage is what the demo upstream's page shows: the identity JWT's
// claims (values JSON-encoded) and the request headers it received.
type demoPage struct {
	H1      string            `json:"h1"`
	Claims  map[string]string `json:"claims"`
	Headers map[string]string `json:"headers"`
}

// readDemoPage reads the tables that follow the demo page's headings.
const readDemoPage = `(() => {
  const table = (heading) => {
    const h = [...document.querySelectorAll('h2')].find(e => e.textContent.includes(heading));
    const rows = {};
    const t = h && h.nextElementSibling;
    if (t && t.tagName === 'TABLE') {
      for (const tr of t.rows) rows[tr.cells[0].textContent] = tr.cells[1].textContent;
    }
    return rows;
  };
  const h1 = document.querySelector('h1');
  return {h1: h1 ? h1.textContent : '', claims: table('X-Pomerium-Jwt-Assertion'), headers: table('Request headers')};
})()`

// userPageRows reads the first table of gatehouse's /.pomerium/ page.
const userPageRows = `(() => {
  const rows = {};
  const t = document.querySelector('table');
  if (t) for (const tr of t.rows) rows[tr.cells[0].textContent] = tr.cells[1].textContent;
  return rows;
})()`

// TestBrowserSignInAndOut signs in and out with a real browser against the
// all-in-one demo of `make run` (deployments/dev): gatehouse, the dev IdP and
// the demo upstream as processes, Chromium driving the sign-in form, the
// cross-host hand-off and the cookies as a person's browser does.
func TestBrowserSignInAndOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gatehouse, the dev IdP, the demo upstream and Chromium")
	}
	requireChromium(t)
	start := time.Now()
	bin := testutil.Gatehouse(t)

	// Chromium resolves every *.localhost name to loopback itself, so the
	// demo's host names work on free ports without touching /etc/hosts.
	addr := testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	routeURL := "http://verify.localhost:" + port
	authURL := "http://authenticate.localhost:" + port
	idpAddr := testutil.FreeAddr(t)
	_, idpPort, _ := net.SplitHostPort(idpAddr)
	idpURL := "http://localhost:" + idpPort
	upstreamAddr := testutil.FreeAddr(t)
	healthAddr := testutil.FreeAddr(t)
	adminsURL := "http://admins.localhost:" + port

	idp := testutil.StartProcess(t, "dev-idp", bin, []string{"dev-idp", "--address", idpAddr, "--issuer", idpURL,
		"--client-id", "gatehouse", "--client-secret", "dev-client-secret",
		"--redirect-uri", authURL + "/oauth2/callback"})
	upstream := testutil.StartProcess(t, "demo-upstream", bin, []string{"demo-upstream", "--address", upstreamAddr})

	// deployments/dev/config.yaml on this test's ports.
	config := configtest.New().
		Set("services", "all").
		Set("address", addr).
		Set("grpc_address", testutil.FreeAddr(t)).
		Set("health_check_addr", healthAddr).
		Delete("log_level").
		Set("log_format", "text").
		Set("authenticate_service_url", authURL).
		IdP(idpURL, "dev-client-secret").
		Set("jwt_claims_headers", "email,name,groups").
		Route(`
			from: ` + routeURL + `
			to: http://` + upstreamAddr + `
			pass_identity_headers: true
			allow_any_authenticated_user: true`).
		Route(`
			from: ` + adminsURL + `
			to: http://` + upstreamAddr + `
			name: Admin tools
			show_error_details: true
			policy:
			  allow:
			    and:
			      - groups:
			          has: ops`).
		Write(t)

	testutil.WaitHTTP(t, idpURL+"/.well-known/openid-configuration", 20*time.Second, idp)
	testutil.WaitHTTP(t, "http://"+upstreamAddr+"/", 20*time.Second, upstream)
	gh := testutil.StartProcess(t, "gatehouse", bin, []string{"--config", config})
	testutil.WaitHTTP(t, "http://"+healthAddr+"/readyz", 30*time.Second, gh)
	t.Logf("processes ready after %s", time.Since(start).Round(time.Millisecond))

	b := startBrowser(t)
	shots := t.TempDir()

	// The route sends a signed-out browser through authenticate to the
	// IdP's login form.
	b.do("opening the route signed out",
		chromedp.Navigate(routeURL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`form input#email`)),
	)
	if loc := b.location(); !strings.HasPrefix(loc, idpURL+"/login") {
		t.Fatalf("signed out, %s/ landed on %s, want the dev IdP's login form %s/login", routeURL, loc, idpURL)
	}
	b.screenshots(shots, "1-idp-login")

	// Sign in as a person does: type into the form and press the button.
	b.do("filling in the dev IdP's login form",
		chromedp.Clear(chromedp.CSS(`input#email`)),
		chromedp.SendKeys(chromedp.CSS(`input#email`), "alice@example.com"),
		chromedp.Clear(chromedp.CSS(`input#name`)),
		chromedp.SendKeys(chromedp.CSS(`input#name`), "Alice Smith"),
		chromedp.Clear(chromedp.CSS(`input#groups`)),
		chromedp.SendKeys(chromedp.CSS(`input#groups`), "admins,dev"),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
	)
	// IdP → authenticate's callback → the route host's /.pomerium/callback/
	// → the page first asked for, served by the demo upstream.
	b.do("waiting for the demo upstream's page after sign-in",
		chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "alice@example.com")]`)),
	)
	if loc := b.location(); loc != routeURL+"/" {
		t.Errorf("after sign-in the browser is at %s, want the page first asked for, %s/", loc, routeURL)
	}
	page := eval[demoPage](b, "reading the demo page", readDemoPage)
	t.Logf("demo page: h1 %q, claims %v", page.H1, page.Claims)
	wantClaims := map[string]string{
		"email":  `"alice@example.com"`,
		"name":   `"Alice Smith"`,
		"groups": `["admins","dev"]`,
		"sub":    `"` + devidp.Subject("alice@example.com") + `"`,
	}
	for k, want := range wantClaims {
		if got := page.Claims[k]; got != want {
			t.Errorf("X-Pomerium-Jwt-Assertion claim %s = %q, want %q (claims %v)", k, got, want, page.Claims)
		}
	}
	wantHeaders := map[string]string{
		"X-Pomerium-Claim-Email":  "alice@example.com",
		"X-Pomerium-Claim-Name":   "Alice Smith",
		"X-Pomerium-Claim-Groups": "admins,dev",
	}
	for k, want := range wantHeaders {
		if got := page.Headers[k]; got != want {
			t.Errorf("upstream header %s = %q, want %q", k, got, want)
		}
	}
	if jwt := page.Headers["X-Pomerium-Jwt-Assertion"]; strings.Count(jwt, ".") != 2 {
		t.Errorf("upstream header X-Pomerium-Jwt-Assertion = %q, want a JWT", jwt)
	}
	b.screenshot(shots, "2-demo-upstream.png")

	// A route whose policy refuses alice: the 403 page says who is signed
	// in, which route refused, why (show_error_details) and what to do.
	b.do("opening a route alice may not use",
		chromedp.Navigate(adminsURL+"/"),
		chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "Access denied")]`)),
	)
	text := eval[string](b, "reading the 403 page", `document.body.innerText`)
	for _, want := range []string{"alice@example.com", "Admin tools", "groups-unauthorized", "Request ID", "Sign in as someone else", "Sign out"} {
		if !strings.Contains(text, want) {
			t.Errorf("the 403 page does not say %q:\n%s", want, text)
		}
	}
	b.screenshots(shots, "5-forbidden")

	// An address no route serves.
	b.do("opening an address without a route",
		chromedp.Navigate("http://nothing.localhost:"+port+"/x"),
		chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "No application")]`)),
	)
	b.screenshots(shots, "6-not-found")

	// The session cookie on the route host: what a browser keeps and sends.
	var session *network.Cookie
	for _, c := range b.cookies(routeURL + "/") {
		if c.Name == "_pomerium" {
			session = c
		}
	}
	switch {
	case session == nil:
		t.Errorf("no _pomerium cookie for %s after sign-in", routeURL)
	case !session.HTTPOnly || session.Secure || session.SameSite != network.CookieSameSiteLax || session.Domain != "verify.localhost":
		t.Errorf("_pomerium cookie: domain %q httpOnly %v secure %v sameSite %q; want host-only verify.localhost, HttpOnly, "+
			"not Secure (insecure_server), SameSite=Lax", session.Domain, session.HTTPOnly, session.Secure, session.SameSite)
	}

	// gatehouse's own page on the route host shows who is signed in.
	b.do("opening /.pomerium/",
		chromedp.Navigate(routeURL+"/.pomerium/"),
		chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "Signed in")]`)),
	)
	rows := eval[map[string]string](b, "reading /.pomerium/", userPageRows)
	if rows["Email"] != "alice@example.com" || rows["Name"] != "Alice Smith" || rows["Groups"] != "admins, dev" ||
		rows["User ID"] != devidp.Subject("alice@example.com") {
		t.Errorf("/.pomerium/ shows %v, want alice@example.com, Alice Smith, groups admins, dev", rows)
	}
	if jwt := eval[string](b, "reading the JWT on /.pomerium/", `(document.querySelector('textarea.raw') || {}).value || ''`); strings.Count(jwt, ".") != 2 {
		t.Errorf("/.pomerium/ does not show the identity JWT in the page: %q", jwt)
	}
	if exp := eval[string](b, "reading exp on /.pomerium/",
		`(() => { for (const tr of document.querySelectorAll('table.claims tr')) if (tr.cells[0].textContent === 'exp') return tr.cells[1].textContent + '|' + tr.cells[1].title; return '' })()`); !strings.Contains(exp, "UTC|") {
		t.Errorf("/.pomerium/ shows exp as %q, want a readable date with the raw value on hover", exp)
	}
	b.screenshots(shots, "3-pomerium-user")

	// The sign-out confirmation says who will be signed out.
	b.do("opening the sign-out confirmation",
		chromedp.Navigate(routeURL+"/.pomerium/sign_out"),
		chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "Sign out?")]`)),
	)
	if text := eval[string](b, "reading the sign-out page", `document.body.innerText`); !strings.Contains(text, "alice@example.com") {
		t.Errorf("the sign-out confirmation does not say who is signed in:\n%s", text)
	}
	b.screenshots(shots, "7-sign-out")
	b.do("back to /.pomerium/",
		chromedp.Navigate(routeURL+"/.pomerium/"),
		chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "Signed in")]`)),
	)

	// Sign out with the page's button, and wait until the browser has
	// left gatehouse's page (the sign-out goes through authenticate and
	// the IdP's end-session endpoint).
	b.do("signing out",
		chromedp.Click(chromedp.CSS(`form[action="/.pomerium/sign_out"] button[type=submit]`)),
	)
	// The sign-out goes through authenticate and the IdP's end-session
	// endpoint and ends on the route host's "You are signed out" page:
	// never straight back on the IdP's form.
	b.do("waiting for the signed-out page",
		chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "You are signed out")]`)),
	)
	if loc := b.location(); loc != routeURL+"/.pomerium/signed_out" {
		t.Errorf("after pressing Sign out the browser is at %s, want %s/.pomerium/signed_out", redactURL(loc), routeURL)
	}
	b.screenshots(shots, "4-signed-out")
	for _, c := range b.cookies(routeURL + "/") {
		if c.Name == "_pomerium" {
			t.Errorf("the _pomerium cookie of %s is still there after sign-out", routeURL)
		}
	}

	// "Sign in again" asks for sign-in at the IdP again, with a form that
	// remembers nothing of the signed-out user.
	b.do("pressing Sign in again",
		chromedp.Click(chromedp.Search(`//a[contains(., "Sign in again")]`)),
		chromedp.WaitVisible(chromedp.CSS(`form input#email`)),
	)
	if loc := b.location(); !strings.HasPrefix(loc, idpURL+"/login") {
		t.Errorf("after sign-out, Sign in again landed on %s, want the dev IdP's login form", redactURL(loc))
	}
	if v := eval[string](b, "reading the login form", `document.querySelector('input#email').value + document.querySelector('input#name').value + document.querySelector('input#groups').value`); v != "" {
		t.Errorf("after sign-out the IdP's form still holds %q", v)
	}

	// The session ended on the server too, not only the cookie: the old
	// cookie, put back as a thief would, is refused.
	if session != nil {
		b.setCookie(routeURL+"/", session)
		b.do("opening the route with the signed-out session's cookie",
			chromedp.Navigate(routeURL+"/"),
			chromedp.WaitReady(chromedp.CSS(`body`)),
		)
		if loc := b.location(); !strings.HasPrefix(loc, idpURL+"/login") {
			t.Errorf("the cookie of a signed-out session still opens %s/: the browser is at %s\n%s",
				routeURL, redactURL(loc), b.describe())
		}
	}
	t.Logf("browser flow done after %s", time.Since(start).Round(time.Millisecond))
}
