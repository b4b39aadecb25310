package authorize

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/browser"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/pages"
	"github.com/gatehouse/gatehouse/pkg/policy"
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

// forbidden answers 403 (code "forbidden": the route's policy refused a
// signed-in user) or 404 (code "not_found": no route serves the address):
// JSON for API clients, for browsers a page saying who is signed in, which
// route refused, why when the route has show_error_details, and how to
// sign out or in as someone else. r, ident and d are nil/zero for a 404.
func (st *state) forbidden(req *authv3.CheckRequest, httpStatus int, host, requestID string, r *route, ident *identity, d policy.Decision) *authv3.CheckResponse {
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
	here := requestURL(h, host)
	p := &pages.Page{
		Brand:     st.brand,
		Status:    httpStatus,
		RequestID: requestID,
	}
	request := pages.Row{Label: "Request", Value: h.GetMethod() + " " + here, Code: true}
	if httpStatus == http.StatusNotFound {
		p.Title = "No application at this address"
		p.Lead = []string{"No route is configured for " + host + "."}
		p.Facts = []pages.Row{request}
		p.Next = "Check the address, or ask the administrator to add a route for it, giving them the request ID below."
	} else {
		route := routeLabel(r)
		p.Title = "Access denied"
		if ident != nil {
			p.Email = ident.subject.Email
		}
		who := "You are signed in"
		if p.Email != "" {
			who += " as " + p.Email
		}
		p.Lead = []string{who + ", but the policy of " + route + " does not allow you this request."}
		p.Facts = []pages.Row{{Label: "Signed in as", Value: p.Email}, {Label: "Route", Value: route, Title: routeDescription(r)}, request}
		if r != nil && r.cfg != nil && r.cfg.ShowErrorDetails {
			p.Reasons = pages.Reasons(d.Reasons.Slice(), d.DenyResult.Value)
		}
		p.Next = "If you should have access, ask the administrator of " + route + " to allow your account, giving them the request ID below. " +
			"If you signed in with the wrong account, sign in as someone else."
		switchUser := handoff.SignOutPath
		if h.GetMethod() == http.MethodGet {
			switchUser += "?" + url.Values{handoff.QueryRedirectURI: {here}}.Encode()
		}
		p.Actions = []pages.Action{
			{Label: "Sign in as someone else", Href: switchUser, Primary: true},
			{Label: "Sign out", Href: handoff.SignOutPath},
			{Label: "Your account", Href: handoff.UserPagePath},
		}
	}
	headers := make([]*corev3.HeaderValueOption, 0, 6)
	for _, kv := range pages.Headers() {
		headers = append(headers, extauthz.NewHeader(kv[0], kv[1]))
	}
	return extauthz.Denied(httpStatus, headers, string(p.HTML()))
}

// routeLabel names a route for people: its name, else its from URL.
func routeLabel(r *route) string {
	if r == nil || r.cfg == nil {
		return "this route"
	}
	if r.cfg.Name != "" {
		return r.cfg.Name
	}
	if r.cfg.FromURL != nil {
		return r.cfg.FromURL.Host + strings.TrimSuffix(r.cfg.Prefix+r.cfg.Path, "/")
	}
	return r.cfg.From
}

// routeDescription is the route's description, shown on hover.
func routeDescription(r *route) string {
	if r == nil || r.cfg == nil {
		return ""
	}
	return r.cfg.Description
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
