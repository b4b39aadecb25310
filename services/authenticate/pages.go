package authenticate

import (
	"bytes"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/gatehouse/gatehouse/pkg/browser"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

// pageCSS is the style of every page: plain and tidy.
const pageCSS = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
main{max-width:44rem;margin:4rem auto;background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:2rem 2.5rem}
h1{font-size:1.4rem;margin:0 0 1rem}p{line-height:1.5}code{background:#f0f2f5;padding:.1rem .3rem;border-radius:3px}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #eceff3;vertical-align:top}
th{width:30%;color:#566074;font-weight:600}button{background:#2f5bd3;color:#fff;border:0;border-radius:5px;padding:.55rem 1.1rem;font-size:1rem;cursor:pointer}
.muted{color:#6b7385;font-size:.9rem}.status{color:#6b7385;font-size:.9rem;margin-bottom:.3rem}`

var pages = template.Must(template.New("layout").Parse(`{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}} · gatehouse</title><style>` + pageCSS + `</style></head><body><main>{{end}}
{{define "foot"}}</main></body></html>{{end}}

{{define "error"}}{{template "head" .}}
<div class="status">{{.Status}} {{.StatusText}}</div>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Hint}}<p>{{.Hint}}</p>{{end}}
<p class="muted">Error <code>{{.Code}}</code>{{if .RequestID}} · request id <code>{{.RequestID}}</code>{{end}}</p>
{{template "foot" .}}{{end}}

{{define "user"}}{{template "head" .}}
<h1>Signed in</h1>
<table>
<tr><th>Email</th><td>{{.Email}}</td></tr>
<tr><th>Name</th><td>{{.Name}}</td></tr>
<tr><th>User id</th><td><code>{{.UserID}}</code></td></tr>
<tr><th>Groups</th><td>{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{else}}<span class="muted">none</span>{{end}}</td></tr>
<tr><th>Session id</th><td><code>{{.SessionID}}</code></td></tr>
<tr><th>Session expires</th><td>{{.ExpiresAt}}</td></tr>
</table>
<h2 style="font-size:1.1rem">Claims</h2>
<table>{{range .Claims}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>{{end}}</table>
<form method="post" action="/.pomerium/sign_out">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<button type="submit">Sign out</button>
</form>
{{template "foot" .}}{{end}}

{{define "confirm"}}{{template "head" .}}
<h1>Sign out?</h1>
<p>{{if .Email}}You are signed in as <strong>{{.Email}}</strong>. {{end}}Do you want to sign out of every application behind this gatehouse?</p>
<form method="post" action="/.pomerium/sign_out">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
{{if .RedirectURI}}<input type="hidden" name="pomerium_redirect_uri" value="{{.RedirectURI}}">{{end}}
<button type="submit">Sign out</button>
</form>
{{template "foot" .}}{{end}}

{{define "signoutpending"}}{{template "head" .}}
<h1>Sign-out pending</h1>
<p>This browser is signed out, but gatehouse cannot reach its session store right now, so your session is not ended everywhere yet. gatehouse keeps trying and ends it as soon as the store is back.</p>
<p class="muted">Until then, anyone holding a copy of this session (its cookie or token) can still use it.</p>
{{template "foot" .}}{{end}}

{{define "signedout"}}{{template "head" .}}
<h1>Signed out</h1>
<p>You have been signed out. Close this window, or go back to the application to sign in again.</p>
{{template "foot" .}}{{end}}
`))

// apiClient reports whether r comes from a program that wants JSON rather
// than an HTML page: the opposite of browser.Request, the rule every
// service shares.
func apiClient(r *http.Request) bool { return !browser.Request(r) }

// requestID returns the request's id (X-Request-Id when a front proxy set
// one), for pages and logs.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 128 {
		return id
	}
	return cryptutil.RandomToken(9)
}

// setPageHeaders sets the headers every page of the service carries.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
}

// render writes a page from the templates.
func render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		// The templates are fixed and their data is plain values; this
		// does not happen, but a page must still be answered.
		http.Error(w, http.StatusText(status), status)
		return
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// problem is an error answered to the client: an HTML page or JSON.
type problem struct {
	Status  int
	Code    string // stable machine-readable code, e.g. "state_replayed"
	Title   string
	Message string
	Hint    string
}

// fail answers r with p and logs it.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, p problem) {
	id := requestID(r)
	level := slog.LevelInfo
	if p.Status >= 500 {
		level = slog.LevelWarn
	}
	s.log.Log(r.Context(), level, "authenticate: request refused",
		"request_id", id, "path", r.URL.Path, "status", p.Status, "reason", p.Code)
	if apiClient(r) {
		writeJSON(w, p.Status, map[string]any{
			"error": p.Code, "error_description": p.Message, "status": p.Status, "request_id": id,
		})
		return
	}
	render(w, p.Status, "error", struct {
		problem
		StatusText string
		RequestID  string
	}{p, http.StatusText(p.Status), id})
}
