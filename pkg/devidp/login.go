package devidp

import (
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// Names of the login form's fields. A program signs in by POSTing these,
// form-encoded, to {issuer}/login.
const (
	loginFieldAuthRequestID = "authRequestID" // hidden; also the GET query parameter
	loginFieldEmail         = "email"
	loginFieldName          = "name"
	loginFieldGroups        = "groups"
)

var pageTemplates = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · gatehouse dev IdP (for development only)</title>
<style>
body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#222;overflow-wrap:anywhere}
.dev{background:#fff3cd;border:2px solid #e0a800;padding:.75rem 1rem;border-radius:.4rem}
.error{background:#f8d7da;border:1px solid #dc3545;padding:.5rem 1rem;border-radius:.4rem}
label{display:block;margin:1rem 0 .25rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
small{color:#555}
button{margin-top:1.25rem;padding:.6rem 1.5rem;font-size:1rem}
code{background:#eee;padding:0 .2rem;word-break:break-all}
</style></head><body>
<p class="dev"><strong>For development only.</strong> This identity provider lets
anyone sign in as anyone, without a password. Never put it in front of anything real.</p>
{{end}}

{{define "login"}}{{template "head" "Sign in"}}
<h1>Sign in</h1>
<p>to client <code>{{.ClientID}}</code>, returning to <code>{{.ReturnTo}}</code>.</p>
{{with .Error}}<p class="error">{{.}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">
<label for="email">Email</label>
<input id="email" type="email" name="email" value="{{.Email}}" required autofocus placeholder="you@example.com">
<label for="name">Name</label>
<input id="name" type="text" name="name" value="{{.Name}}" placeholder="Your name">
<label for="groups">Groups <small>(comma-separated)</small></label>
<input id="groups" type="text" name="groups" value="{{.Groups}}" placeholder="for example admins,dev">
<button type="submit">Sign in</button>
</form>
</body></html>
{{end}}

{{define "signed-out"}}{{template "head" "Signed out"}}
<h1>Signed out</h1>
<p>You have been signed out of the gatehouse dev IdP.</p>
</body></html>
{{end}}

{{define "index"}}{{template "head" "gatehouse dev IdP"}}
<h1>gatehouse dev IdP</h1>
<p>An OpenID Connect provider for local development.</p>
<ul>
<li>Issuer: <code>{{.Issuer}}</code></li>
<li>Discovery: <a href="{{.Discovery}}">{{.Discovery}}</a></li>
<li>Client: <code>{{.ClientID}}</code></li>
</ul>
</body></html>
{{end}}

{{define "error"}}{{template "head" "Error"}}
<h1>Cannot sign in</h1>
<p class="error">{{.}}</p>
</body></html>
{{end}}
`))

type loginPage struct {
	ClientID, ReturnTo, Action, AuthRequestID string
	Email, Name, Groups, Error                string
}

func renderPage(w http.ResponseWriter, status int, name string, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action *; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTemplates.ExecuteTemplate(w, name, data)
}

// handleLogin shows the login form (GET) and completes the authorization
// request from its submission (POST): the response redirects straight to the
// client's redirect_uri with code and state.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, requestBodyMaxSize)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		renderPage(w, http.StatusBadRequest, "error", "Cannot parse the form: "+err.Error())
		return
	}
	id := r.Form.Get(loginFieldAuthRequestID)
	authReq, ok := s.storage.authRequest(id)
	if !ok {
		renderPage(w, http.StatusBadRequest, "error",
			"Unknown or expired sign-in request. Start again from the application.")
		return
	}
	page := loginPage{
		ClientID:      authReq.clientID,
		ReturnTo:      returnTo(authReq.redirectURI),
		Action:        s.prefix + pathLogin,
		AuthRequestID: id,
	}
	if r.Method != http.MethodPost {
		page.Email, page.Name, page.Groups = lastLogin(r)
		if authReq.loginHint != "" {
			page.Email = authReq.loginHint
		}
		renderPage(w, http.StatusOK, "login", page)
		return
	}

	page.Email = r.PostForm.Get(loginFieldEmail)
	page.Name = r.PostForm.Get(loginFieldName)
	page.Groups = r.PostForm.Get(loginFieldGroups)
	user, err := newIdentity(page.Email, page.Name, page.Groups)
	if err != nil {
		page.Error = err.Error()
		renderPage(w, http.StatusBadRequest, "login", page)
		return
	}
	done, err := s.storage.completeLogin(id, user)
	if err != nil {
		renderPage(w, http.StatusBadRequest, "error",
			"Unknown or expired sign-in request. Start again from the application.")
		return
	}
	s.log.Info("devidp: sign-in", "email", user.Email, "user", user.Subject,
		"groups", user.Groups, "client_id", done.clientID)
	http.SetCookie(w, &http.Cookie{
		Name:     loginCookieName,
		Value:    base64.RawURLEncoding.EncodeToString([]byte(url.Values{"e": {page.Email}, "n": {page.Name}, "g": {page.Groups}}.Encode())),
		Path:     s.prefix + pathLogin,
		MaxAge:   loginCookieMaxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
	op.AuthResponse(done, s.provider, w, r)
}

// lastLogin reads the values last submitted from this browser, to prefill
// the form.
func lastLogin(r *http.Request) (email, name, groups string) {
	c, err := r.Cookie(loginCookieName)
	if err != nil {
		return "", "", ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return "", "", ""
	}
	v, err := url.ParseQuery(string(raw))
	if err != nil {
		return "", "", ""
	}
	return v.Get("e"), v.Get("n"), v.Get("g")
}

// returnTo shows where the sign-in returns: the redirect URI without query.
func returnTo(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return redirectURI
	}
	return u.Scheme + "://" + u.Host + u.Path
}

func (s *Server) handleSignedOut(w http.ResponseWriter, _ *http.Request) {
	renderPage(w, http.StatusOK, "signed-out", nil)
}

func (s *Server) handleIndex(w http.ResponseWriter, _ *http.Request) {
	renderPage(w, http.StatusOK, "index", map[string]string{
		"Issuer":    s.cfg.Issuer,
		"Discovery": s.cfg.Issuer + "/.well-known/openid-configuration",
		"ClientID":  s.cfg.ClientID,
	})
}
