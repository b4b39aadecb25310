package proxy

import (
	"encoding/json"
	"net/http"

	"github.com/gatehouse/gatehouse/pkg/browser"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/pages"
)

// Page messages. They say what happened and what to do, never why in
// terms of internals (no error strings from Go reach the client).
const (
	msgNotFound        = "No route is configured for this address. Check the URL, or ask the administrator to add a route for it."
	msgUpstreamDown    = "The application behind this address could not be reached. It may be down or restarting; try again in a moment."
	msgUpstreamTimeout = "The application behind this address took too long to answer. Try again in a moment."
	msgAuthUnavailable = "Access could not be checked right now, so the request was not let through. Try again in a moment."
	msgUpgradeRefused  = "This route does not allow switching to the protocol the request asked for (Upgrade)."
	msgBadCallback     = "This sign-in link is not valid or has expired. Go back to the page you wanted and sign in again."
	msgBadRedirect     = "The redirect address is missing or not allowed."
	msgNotSignedIn     = "You are not signed in."
	msgForbidden       = "You are not allowed to access this page."
)

// errorTitles are the headings of the proxy's error pages.
var errorTitles = map[int]string{
	http.StatusBadRequest:          "This request could not be handled",
	http.StatusUnauthorized:        "You are not signed in",
	http.StatusForbidden:           "Access denied",
	http.StatusNotFound:            "Nothing here",
	http.StatusMethodNotAllowed:    "Method not allowed",
	http.StatusBadGateway:          "The application is not answering",
	http.StatusServiceUnavailable:  "Temporarily unavailable",
	http.StatusGatewayTimeout:      "The application took too long",
	http.StatusInternalServerError: "Something went wrong",
}

// errorBody is the JSON form of an error page.
type errorBody struct {
	Status    int    `json:"status"`
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// wantsJSON reports whether the client is an API client (XHR, JSON,
// gRPC): the opposite of browser.Request, the rule every service shares.
func wantsJSON(r *http.Request) bool { return !browser.Request(r) }

// brandOf returns the branding of the running configuration, which
// serveHTTP hands every handler through its recorder.
func brandOf(w http.ResponseWriter) pages.Branding {
	if rec, ok := w.(*recorder); ok && rec.brand != nil {
		return *rec.brand
	}
	return pages.Branding{}
}

// writeError writes an error page (HTML, or JSON for API clients) with
// the request id.
func writeError(w http.ResponseWriter, r *http.Request, status int, message, requestID string) {
	h := w.Header()
	if requestID != "" {
		h.Set(headerRequestID, requestID)
	}
	if wantsJSON(r) {
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(errorBody{Status: status, Error: http.StatusText(status), Message: message, RequestID: requestID})
		return
	}
	title := errorTitles[status]
	if title == "" {
		title = http.StatusText(status)
	}
	if message == msgNotFound {
		title = "No application at this address"
	}
	p := &pages.Page{
		Brand:     brandOf(w),
		Status:    status,
		Title:     title,
		Lead:      []string{message},
		Facts:     []pages.Row{{Label: "Address", Value: r.Host + requestPathOrSlash(r), Code: true}},
		RequestID: requestID,
	}
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if r.Method == http.MethodGet {
			p.Actions = []pages.Action{{Label: "Try again", Href: r.URL.RequestURI(), Primary: true}}
		}
	case http.StatusUnauthorized:
		p.Actions = []pages.Action{{Label: "Sign in", Href: "/", Primary: true}}
	case http.StatusNotFound, http.StatusBadRequest, http.StatusMethodNotAllowed:
		if message != msgNotFound {
			p.Actions = []pages.Action{{Label: "Go to the application", Href: "/", Primary: true}}
		}
	}
	p.Next = "If this keeps happening, give the administrator the request ID below."
	pages.Write(w, r, status, p)
}

// requestPathOrSlash is the request's path for pages ("/" when empty).
func requestPathOrSlash(r *http.Request) string {
	if r.URL.Path == "" {
		return "/"
	}
	return r.URL.Path
}

// userPage is the route host's /.pomerium/ page for the identity JWT jwt
// with claims.
func userPage(brand pages.Branding, claims map[string]any, jwt, csrf, requestID string, jwtEndpoint bool) *pages.Page {
	str := func(k string) string { s, _ := claims[k].(string); return s }
	email, name := str("email"), str("name")
	var groups []string
	if gs, ok := claims["groups"].([]any); ok {
		for _, g := range gs {
			if s, ok := g.(string); ok {
				groups = append(groups, s)
			}
		}
	}
	groupList := "none"
	if len(groups) > 0 {
		groupList = joinComma(groups)
	}
	title := "Signed in"
	if name != "" {
		title += " as " + name
	} else if email != "" {
		title += " as " + email
	}
	return &pages.Page{
		Brand: brand,
		Title: title,
		Email: email,
		Lead:  []string{"This is who gatehouse says you are to the application at this address."},
		Facts: []pages.Row{
			{Label: "Email", Value: email},
			{Label: "Name", Value: name},
			{Label: "User ID", Value: str("sub"), Code: true},
			{Label: "Groups", Value: groupList},
		},
		Actions: []pages.Action{
			{Label: "Back to the application", Href: "/", Primary: true},
			{Label: "Sign out", Post: handoff.SignOutPath, Fields: []pages.Field{{Name: handoff.QueryCSRFToken, Value: csrf}}},
		},
		ClaimsTitle: "Claims of the identity JWT",
		ClaimsHint:  claimsHint(jwtEndpoint),
		Claims:      pages.ClaimRows(claims),
		Raw: &pages.Raw{Title: "The identity JWT", Value: jwt,
			Hint: "Signed by gatehouse; it expires " + expiresIn(claims) + ". Select it to copy; verify it with the keys at /.well-known/pomerium/jwks.json."},
		RequestID: requestID,
	}
}

// claimsHint says where else the claims and the JWT are served.
func claimsHint(jwtEndpoint bool) string {
	also := "also as JSON at /.pomerium/user"
	if jwtEndpoint {
		also += ", and the raw JWT at /.pomerium/jwt"
	}
	return "What this route's application receives in the X-Pomerium-Jwt-Assertion header (" + also + "). Hover over a date for its raw value."
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}

// expiresIn says when the JWT's exp is, for the page's hint.
func expiresIn(claims map[string]any) string {
	for _, r := range pages.ClaimRows(map[string]any{"exp": claims["exp"]}) {
		if r.Title != "" {
			return "at " + r.Value
		}
	}
	return "in a few minutes"
}
