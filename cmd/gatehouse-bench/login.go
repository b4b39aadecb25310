package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// localhostClient is an HTTP client that dials every *.localhost name (and
// localhost) at 127.0.0.1, as browsers do, whatever the resolver says. It
// never uses a proxy from the environment.
func localhostClient(jar http.CookieJar, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if h := strings.ToLower(host); h == "localhost" || strings.HasSuffix(h, ".localhost") {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr, Jar: jar, Timeout: timeout}
}

// login is the identity the bench signs in as at the dev IdP.
type login struct {
	Email, Name, Groups string
}

// programmaticLogin signs in to a gatehouse route the way a command-line
// client does: it asks the proxy's /.pomerium/api/v1/login for a sign-in
// URL, follows it to the dev IdP's login form, submits the form and follows
// the redirects until authenticate sends the browser back to routeURL with
// pomerium_jwt=<handle>, which it returns.
func programmaticLogin(ctx context.Context, routeURL string, who login) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	jar, _ := cookiejar.New(nil)
	c := localhostClient(jar, 10*time.Second)
	var handle string
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 20 {
			return errors.New("more than 20 redirects")
		}
		if h := req.URL.Query().Get("pomerium_jwt"); h != "" {
			handle = h
			return http.ErrUseLastResponse
		}
		return nil
	}

	// 1. The sign-in URL, from the proxy. The handle goes back to a
	// loopback address, as it does for a CLI listening on a local port (a
	// route host is never an allowed programmatic redirect); the redirect
	// is stopped before it is followed.
	loginURL := strings.TrimSuffix(routeURL, "/") + "/.pomerium/api/v1/login?" +
		url.Values{"pomerium_redirect_uri": {"http://127.0.0.1:1/gatehouse-bench"}}.Encode()
	body, final, err := get(ctx, c, loginURL)
	if err != nil {
		return "", fmt.Errorf("programmatic login URL: %w", err)
	}
	signIn := strings.TrimSpace(body)
	if _, err := url.ParseRequestURI(signIn); err != nil {
		return "", fmt.Errorf("programmatic login: %s answered %q, want a sign-in URL", final, truncate(signIn, 200))
	}

	// 2. Follow it to the dev IdP's login form.
	_, final, err = get(ctx, c, signIn)
	if err != nil {
		return "", fmt.Errorf("sign-in URL: %w", err)
	}
	if handle != "" {
		return handle, nil // already signed in (should not happen with a fresh jar)
	}

	// 3. Submit the form; the redirects end at routeURL?pomerium_jwt=.
	resp, err := submitIdPLogin(ctx, c, final, who)
	if err != nil {
		return "", fmt.Errorf("sign-in URL: %w", err)
	}
	if handle != "" {
		resp.Body.Close()
		return handle, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return "", fmt.Errorf("IdP login ended at %s with %s, no pomerium_jwt: %s", resp.Request.URL, resp.Status, truncate(string(b), 300))
}

// submitIdPLogin submits the dev IdP's login form at form (the URL the
// sign-in redirects ended at, carrying authRequestID) as who, and follows
// the redirects that come back.
func submitIdPLogin(ctx context.Context, c *http.Client, form *url.URL, who login) (*http.Response, error) {
	reqID := form.Query().Get("authRequestID")
	if reqID == "" {
		return nil, fmt.Errorf("led to %s, want the IdP's login form with authRequestID", form)
	}
	values := url.Values{"authRequestID": {reqID}, "email": {who.Email}, "name": {who.Name}, "groups": {who.Groups}}
	post := *form
	post.RawQuery = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, post.String(), strings.NewReader(values.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("IdP login form: %w", err)
	}
	return resp, nil
}

// get follows redirects and returns the final body and URL; any status but
// 200 is an error, except the redirect at which c's CheckRedirect stopped.
func get(ctx context.Context, c *http.Client, u string) (string, *url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK && (resp.StatusCode < 300 || resp.StatusCode > 399) {
		return string(b), resp.Request.URL, fmt.Errorf("GET %s: %s: %s", resp.Request.URL, resp.Status, truncate(string(b), 300))
	}
	return string(b), resp.Request.URL, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
