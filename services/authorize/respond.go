package authorize

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/browser"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/handoff"
)

// isBrowser reports whether a request comes from a browser navigating
// (browser.Is, the rule every service shares), which is sent to sign in
// with a redirect and shown HTML pages; XHR, JSON and gRPC clients get
// status codes and JSON instead.
func isBrowser(req *authv3.CheckRequest) bool {
	return browser.Is(extauthz.Header(req, "accept"), extauthz.Header(req, "content-type"), extauthz.Header(req, "x-requested-with"))
}

// requestURL is the URL the client asked for: scheme://host/path?query.
func requestURL(h *authv3.AttributeContext_HttpRequest, host string) string {
	scheme := h.GetScheme()
	if scheme != "http" {
		scheme = "https"
	}
	path := h.GetPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

// signIn answers a request that needs a session: a browser is redirected
// to the authenticate service's signed sign-in URL, which comes back to the
// URL it asked for; any other client gets 401.
func (st *state) signIn(req *authv3.CheckRequest, host, requestID string, now time.Time) *authv3.CheckResponse {
	if isBrowser(req) && st.authURL != nil {
		u := handoff.SignInURL(st.authURL, requestURL(extauthz.HTTPRequest(req), host), false, st.urlKey, now)
		return extauthz.Denied(http.StatusFound, []*corev3.HeaderValueOption{
			extauthz.NewHeader("location", u.String()),
			extauthz.NewHeader("cache-control", "no-store"),
			extauthz.NewHeader("content-type", "text/html; charset=utf-8"),
		}, "")
	}
	return extauthz.Denied(http.StatusUnauthorized, []*corev3.HeaderValueOption{
		extauthz.NewHeader("content-type", "application/json"),
		extauthz.NewHeader("cache-control", "no-store"),
		extauthz.NewHeader("www-authenticate", `Pomerium realm="`+strings.ReplaceAll(host, `"`, "")+`"`),
	}, jsonError("unauthenticated", requestID))
}

// errorPage is shown to browsers that are refused (403) or ask for a host
// no route serves (404).
var errorPage = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Status}} {{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px;word-break:break-all}
.muted{color:#666;font-size:.9rem}
</style>
</head>
<body>
<h1>{{.Status}} {{.Title}}</h1>
<p>{{.Message}}</p>
<p>You asked for <code>{{.Method}} {{.URL}}</code>.</p>
{{if .SignOut}}<p>If you should have access, you may be signed in as the wrong user: <a href="{{.SignOut}}">sign out</a> and sign in again.</p>{{end}}
<p class="muted">Request ID: <code>{{.RequestID}}</code></p>
</body>
</html>
`))

type errorPageData struct {
	Status    int
	Title     string
	Message   string
	Method    string
	URL       string
	RequestID string
	SignOut   string
}

// forbidden answers 403 (code "forbidden") or 404 (code "not_found").
func forbidden(req *authv3.CheckRequest, httpStatus int, host, requestID string) *authv3.CheckResponse {
	code := "forbidden"
	if httpStatus == http.StatusNotFound {
		code = "not_found"
	}
	if !isBrowser(req) {
		return extauthz.Denied(httpStatus, []*corev3.HeaderValueOption{
			extauthz.NewHeader("content-type", "application/json"),
			extauthz.NewHeader("cache-control", "no-store"),
		}, jsonError(code, requestID))
	}
	h := extauthz.HTTPRequest(req)
	d := errorPageData{
		Status:    httpStatus,
		Title:     http.StatusText(httpStatus),
		Method:    h.GetMethod(),
		URL:       requestURL(h, host),
		RequestID: requestID,
	}
	if httpStatus == http.StatusForbidden {
		d.Message = "You are signed in, but the policy of this route does not allow you this request."
		d.SignOut = handoff.SignOutPath
	} else {
		d.Message = "No route is configured for this address."
	}
	var buf bytes.Buffer
	if err := errorPage.Execute(&buf, d); err != nil {
		buf.Reset()
		buf.WriteString(http.StatusText(httpStatus))
	}
	return extauthz.Denied(httpStatus, []*corev3.HeaderValueOption{
		extauthz.NewHeader("content-type", "text/html; charset=utf-8"),
		extauthz.NewHeader("cache-control", "no-store"),
	}, buf.String())
}

// badRequest answers a CheckRequest without an HTTP request in it.
func badRequest(requestID string) *authv3.CheckResponse {
	return extauthz.Denied(http.StatusBadRequest, []*corev3.HeaderValueOption{
		extauthz.NewHeader("content-type", "application/json"),
	}, jsonError("bad_request", requestID))
}

// jsonError is the body of a refusal to an API client.
func jsonError(code, requestID string) string {
	b, _ := json.Marshal(struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}{code, requestID})
	return string(b) + "\n"
}
