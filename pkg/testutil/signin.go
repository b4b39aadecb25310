package testutil

import (
	"io"
	"net/http"
	"net/url"
	"testing"
)

// BrowserGet requests u as a browser does (Accept: text/html), following
// redirects with c's policy and cookie jar.
func BrowserGet(t testing.TB, c *http.Client, u string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp
}

// DevIDPSignIn opens target as a browser, expects to land on the dev
// identity provider's login form (gatehouse dev-idp), and submits it as
// email, name and groups (comma-separated). It returns the response the
// sign-in ends on, after every redirect back through gatehouse.
func DevIDPSignIn(t testing.TB, c *http.Client, target, email, name, groups string) *http.Response {
	t.Helper()
	resp := BrowserGet(t, c, target)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := resp.Request.URL
	id := form.Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("%s: expected the dev IdP's login form, got %s %d:\n%s", target, form, resp.StatusCode, body)
	}
	post := url.URL{Scheme: form.Scheme, Host: form.Host, Path: form.Path}
	resp, err := c.PostForm(post.String(), url.Values{
		"authRequestID": {id}, "email": {email}, "name": {name}, "groups": {groups},
	})
	if err != nil {
		t.Fatalf("sign in as %s: %v", email, err)
	}
	return resp
}
