package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// oauth2ProxyCookie is the session cookie name the bench gives oauth2-proxy
// (its default).
const oauth2ProxyCookie = "_oauth2_proxy"

// oauth2ProxyConfig is one oauth2-proxy peer: the OIDC provider is the
// dev IdP, the upstream the bench's, the allowed email domain the one the
// gatehouse policy allows.
type oauth2ProxyConfig struct {
	Address      string // http listener, 127.0.0.1:PORT
	UpstreamURL  string
	IdPURL       string
	CookieSecret string // 32 characters: the AES-256 key as oauth2-proxy takes it
	RedisURL     string // empty: cookie session store
}

// RedirectURL is the OAuth callback the dev IdP must have registered.
func (c oauth2ProxyConfig) RedirectURL() string { return "http://" + c.Address + "/oauth2/callback" }

// args are oauth2-proxy's command-line flags: OIDC against the dev IdP
// with PKCE, user headers passed upstream (X-Forwarded-User and
// X-Forwarded-Email, which the bench upstream checks), the cookie or the
// Redis session store. Everything else keeps oauth2-proxy's defaults, as a
// user would run it (request logging on, like gatehouse's access log).
func (c oauth2ProxyConfig) args() []string {
	a := []string{
		"--http-address=" + c.Address,
		"--upstream=" + c.UpstreamURL + "/",
		"--provider=oidc",
		"--oidc-issuer-url=" + c.IdPURL,
		"--client-id=gatehouse",
		"--client-secret=" + idpClientSecret,
		"--redirect-url=" + c.RedirectURL(),
		"--code-challenge-method=S256",
		"--email-domain=example.com",
		"--cookie-name=" + oauth2ProxyCookie,
		"--cookie-secret=" + c.CookieSecret,
		"--cookie-secure=false",
		"--skip-provider-button=true",
		"--pass-user-headers=true",
		"--silence-ping-logging=true",
	}
	if c.RedisURL != "" {
		a = append(a, "--session-store-type=redis", "--redis-connection-url="+c.RedisURL)
	} else {
		a = append(a, "--session-store-type=cookie")
	}
	return a
}

// oauth2ProxyLogin signs in to oauth2-proxy at base (http://HOST:PORT) as
// a browser does: /oauth2/start, the dev IdP's login form as who, the
// callback; it returns the Cookie header value that carries the session
// (the cookie may be split in _oauth2_proxy_0, _1, … when large).
func oauth2ProxyLogin(ctx context.Context, base string, who login) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	jar, _ := cookiejar.New(nil)
	c := localhostClient(jar, 10*time.Second)
	_, final, err := get(ctx, c, base+"/oauth2/start?"+url.Values{"rd": {"/"}}.Encode())
	if err != nil {
		return "", fmt.Errorf("oauth2-proxy sign-in: %w", err)
	}
	resp, err := submitIdPLogin(ctx, c, final, who)
	if err != nil {
		return "", fmt.Errorf("oauth2-proxy /oauth2/start: %w", err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("oauth2-proxy sign-in ended at %s with %s: %s", resp.Request.URL, resp.Status, truncate(string(b), 300))
	}
	u, _ := url.Parse(base + "/")
	var parts []string
	for _, ck := range jar.Cookies(u) {
		if ck.Name == oauth2ProxyCookie || strings.HasPrefix(ck.Name, oauth2ProxyCookie+"_") && !strings.HasSuffix(ck.Name, "_csrf") {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("oauth2-proxy sign-in set no %s cookie (ended at %s)", oauth2ProxyCookie, resp.Request.URL)
	}
	return strings.Join(parts, "; "), nil
}
