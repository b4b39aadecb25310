package proxy

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"sort"
	"strconv"

	"github.com/gatehouse/gatehouse/pkg/browser"
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

var baseCSS = `body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1f2328}
main{max-width:44rem;margin:8vh auto;padding:2rem 2.25rem;background:#fff;border:1px solid #d8dee4;border-radius:10px}
h1{font-size:1.35rem;margin:0 0 .75rem}p{margin:.5rem 0}.status{color:#59636e;font-size:.9rem;letter-spacing:.02em}
.rid{margin-top:1.5rem;color:#59636e;font-size:.8rem}code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
table{border-collapse:collapse;width:100%;margin:.75rem 0}th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-top:1px solid #eaeef2}
th{width:30%;font-weight:600}button{font:inherit;padding:.4rem 1rem;border:1px solid #d8dee4;border-radius:6px;background:#f6f8fa;cursor:pointer}`

var errorTemplate = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Status}} {{.Title}}</title><style>` + baseCSS + `</style></head>
<body><main>
<p class="status">{{.Status}}</p>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .RequestID}}<p class="rid">Request ID: <code>{{.RequestID}}</code></p>{{end}}
</main></body></html>
`))

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

// writeError writes an error page (HTML, or JSON for API clients) with
// the request id.
func writeError(w http.ResponseWriter, r *http.Request, status int, message, requestID string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if requestID != "" {
		h.Set(headerRequestID, requestID)
	}
	title := http.StatusText(status)
	if wantsJSON(r) {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(errorBody{Status: status, Error: title, Message: message, RequestID: requestID})
		return
	}
	var buf bytes.Buffer
	_ = errorTemplate.Execute(&buf, struct {
		Status                    int
		Title, Message, RequestID string
	}{status, title, message, requestID})
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

var userTemplate = template.Must(template.New("user").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Signed in{{with .Email}} as {{.}}{{end}}</title><style>` + baseCSS + `</style></head>
<body><main>
<h1>Signed in{{with .Name}} as {{.}}{{end}}</h1>
<table>
<tr><th>Email</th><td>{{.Email}}</td></tr>
<tr><th>Name</th><td>{{.Name}}</td></tr>
<tr><th>User ID</th><td><code>{{.User}}</code></td></tr>
<tr><th>Groups</th><td>{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{else}}none{{end}}</td></tr>
</table>
<h2 style="font-size:1.05rem;margin-top:1.5rem">Claims of the identity JWT</h2>
<p class="status">What this route's upstream receives in <code>X-Pomerium-Jwt-Assertion</code> ({{if .JWTEndpoint}}<a href="/.pomerium/jwt">raw</a>, {{end}}<a href="/.pomerium/user">JSON</a>).</p>
<table>
{{range .Claims}}<tr><th><code>{{.Name}}</code></th><td><code>{{.Value}}</code></td></tr>
{{end}}</table>
<form method="post" action="/.pomerium/sign_out"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button type="submit">Sign out</button></form>
{{if .RequestID}}<p class="rid">Request ID: <code>{{.RequestID}}</code></p>{{end}}
</main></body></html>
`))

type claimRow struct{ Name, Value string }

type userPage struct {
	Email, Name, User, RequestID string
	Groups                       []string
	Claims                       []claimRow
	CSRF                         string // the sign-out form's token
	JWTEndpoint                  bool   // /.pomerium/jwt is served
}

func newUserPage(claims map[string]any, requestID string) userPage {
	p := userPage{RequestID: requestID}
	p.Email, _ = claims["email"].(string)
	p.Name, _ = claims["name"].(string)
	p.User, _ = claims["sub"].(string)
	if gs, ok := claims["groups"].([]any); ok {
		for _, g := range gs {
			if s, ok := g.(string); ok {
				p.Groups = append(p.Groups, s)
			}
		}
	}
	names := make([]string, 0, len(claims))
	for k := range claims {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		var v string
		switch c := claims[k].(type) {
		case string:
			v = c
		default:
			b, _ := json.Marshal(c)
			v = string(b)
		}
		p.Claims = append(p.Claims, claimRow{k, v})
	}
	return p
}
