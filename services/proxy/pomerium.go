package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/routematch"
)

// servePomerium serves the /.pomerium/ pages of a route host.
func (s *Service) servePomerium(w http.ResponseWriter, r *http.Request, st *state, credential, reqID string) (string, string) {
	st.setResponseHeaders(w, r)
	cr := st.table.MatchHost(r.Host)
	if cr == nil {
		writeError(w, r, http.StatusNotFound, msgNotFound, reqID)
		return "", "no-route"
	}
	routeID := cr.ID
	p := requestPath(r)
	switch p {
	case "/.pomerium":
		http.Redirect(w, r, handoff.UserPagePath, http.StatusFound)
		return routeID, "internal"
	case handoff.CallbackPath, "/.pomerium/callback":
		if !allowMethods(w, r, reqID, http.MethodGet, http.MethodHead) {
			return routeID, "invalid"
		}
		s.serveCallback(w, r, st, reqID)
		return routeID, "internal"
	case handoff.SignOutPath:
		if !allowMethods(w, r, reqID, http.MethodGet, http.MethodPost) {
			return routeID, "invalid"
		}
		s.serveSignOut(w, r, st)
		return routeID, "internal"
	case handoff.ProgrammaticLogin:
		if !allowMethods(w, r, reqID, http.MethodGet, http.MethodHead) {
			return routeID, "invalid"
		}
		s.serveProgrammaticLogin(w, r, st, reqID)
		return routeID, "internal"
	case handoff.UserPagePath, handoff.UserJSONPath, handoff.JWTPath:
		if !allowMethods(w, r, reqID, http.MethodGet, http.MethodHead) {
			return routeID, "invalid"
		}
	default:
		writeError(w, r, http.StatusNotFound, "There is no such page.", reqID)
		return routeID, "internal"
	}

	// The identity pages ask authorize for the signed-in user.
	ip, _ := clientIP(r, st.hops)
	resp, err := s.check(r.Context(), &checkInput{
		r: r, requestID: reqID, scheme: requestScheme(r, st.hops), clientIP: ip,
		credential: credential, routeID: routeID, internal: true,
	})
	if err != nil {
		if r.Context().Err() == nil {
			s.logger.Error("authorize check failed", "route", routeID, "request_id", reqID, "error", err.Error())
			writeError(w, r, http.StatusServiceUnavailable, msgAuthUnavailable, reqID)
		}
		return routeID, "error"
	}
	if !allowed(resp) {
		d := resp.GetDeniedResponse()
		if d == nil {
			d = resp.GetErrorResponse()
		}
		writeDenied(w, r, d, reqID)
		return routeID, "deny"
	}
	var jwt string
	for _, o := range resp.GetOkResponse().GetHeaders() {
		if strings.EqualFold(o.GetHeader().GetKey(), headerJWTAssertion) {
			jwt = o.GetHeader().GetValue()
		}
	}
	payload, ok := jwtPayload(jwt)
	if !ok {
		writeError(w, r, http.StatusUnauthorized, msgNotSignedIn, reqID)
		return routeID, "deny"
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	switch p {
	case handoff.JWTPath:
		h.Set("Content-Type", "application/jwt")
		h.Set("Content-Length", strconv.Itoa(len(jwt)))
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(jwt))
		}
	case handoff.UserJSONPath:
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(payload)
	default:
		var claims map[string]any
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.UseNumber()
		if err := dec.Decode(&claims); err != nil {
			writeError(w, r, http.StatusUnauthorized, msgNotSignedIn, reqID)
			return routeID, "deny"
		}
		if wantsJSON(r) {
			h.Set("Content-Type", "application/json")
			_, _ = w.Write(payload)
			return routeID, "allow"
		}
		var buf bytes.Buffer
		if err := userTemplate.Execute(&buf, newUserPage(claims, reqID)); err != nil {
			writeError(w, r, http.StatusInternalServerError, "The page could not be shown.", reqID)
			return routeID, "error"
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(buf.Bytes())
	}
	return routeID, "allow"
}

// jwtPayload returns the decoded claims part of a compact JWS. The token
// comes from authorize, which signed it, so it is not verified again.
func jwtPayload(jwt string) ([]byte, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil || !json.Valid(b) {
		return nil, false
	}
	return b, true
}

func allowMethods(w http.ResponseWriter, r *http.Request, reqID string, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, r, http.StatusMethodNotAllowed, "This page does not accept "+r.Method+" requests.", reqID)
	return false
}

// serveCallback opens the signed callback from authenticate, sets the
// route host's session cookie and sends the user to the page first asked
// for.
func (s *Service) serveCallback(w http.ResponseWriter, r *http.Request, st *state, reqID string) {
	if st.cipher == nil || len(st.cfg.URLKey) == 0 {
		writeError(w, r, http.StatusBadRequest, msgBadCallback, reqID)
		return
	}
	now := s.now()
	scheme := requestScheme(r, st.hops)
	u := &url.URL{Scheme: scheme, Host: r.Host, Path: handoff.CallbackPath, RawQuery: r.URL.RawQuery}
	handle, redirect, err := handoff.OpenCallback(u, r.Host, st.cfg.URLKey, st.cipher, now)
	if err != nil {
		// Behind a TLS-terminating load balancer the proxy may see http
		// for a URL that was signed as https (or the reverse). The
		// signature still binds host, path and every parameter.
		other := *u
		other.Scheme = "https"
		if scheme == "https" {
			other.Scheme = "http"
		}
		var err2 error
		handle, redirect, err2 = handoff.OpenCallback(&other, r.Host, st.cfg.URLKey, st.cipher, now)
		if err2 != nil {
			s.logger.Info("bad sign-in callback", "request_id", reqID, "host", r.Host, "reason", err.Error())
			writeError(w, r, http.StatusBadRequest, msgBadCallback, reqID)
			return
		}
	}
	if redirect.Scheme != "http" && redirect.Scheme != "https" {
		writeError(w, r, http.StatusBadRequest, msgBadCallback, reqID)
		return
	}
	http.SetCookie(w, sessionCookie(st.cfg, r.Host, handle))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// sessionCookie is the route host's session cookie holding handle; an
// empty handle makes the cookie that clears it.
func sessionCookie(cfg *config.Config, host, handle string) *http.Cookie {
	c := &http.Cookie{
		Name:     cfg.CookieName,
		Value:    handle,
		Path:     "/",
		Secure:   !cfg.InsecureServer,
		HttpOnly: true,
		SameSite: cfg.CookieSameSiteMode(),
		MaxAge:   int(cfg.CookieExpire.Std().Seconds()),
		Domain:   cookieDomainFor(cfg.CookieDomain, host),
	}
	if cfg.CookieSecure != nil {
		c.Secure = *cfg.CookieSecure
	}
	if cfg.CookieHTTPOnly != nil {
		c.HttpOnly = *cfg.CookieHTTPOnly
	}
	if c.SameSite == http.SameSiteNoneMode && !c.Secure {
		c.SameSite = http.SameSiteLaxMode // browsers reject SameSite=None without Secure
	}
	if handle == "" {
		c.MaxAge = -1
	}
	return c
}

// cookieDomainFor returns cookie_domain when it covers host (host is the
// domain or a subdomain of it), else "" (a host-only cookie): a browser
// would refuse a Domain that does not cover the host.
func cookieDomainFor(domain, host string) string {
	d := strings.ToLower(strings.TrimPrefix(domain, "."))
	if d == "" {
		return ""
	}
	h := strings.ToLower(routematch.Hostname(host))
	if h == d || strings.HasSuffix(h, "."+d) {
		return d
	}
	return ""
}

// serveSignOut clears the route host's cookie and sends the user to
// authenticate's sign-out, which ends the session everywhere and comes
// back to the route host (or signout_redirect_url, or the
// pomerium_redirect_uri given, when it is on this host).
func (s *Service) serveSignOut(w http.ResponseWriter, r *http.Request, st *state) {
	back := (&url.URL{Scheme: requestScheme(r, st.hops), Host: r.Host, Path: "/"}).String()
	if st.cfg.SignOutRedirectURL != "" {
		back = st.cfg.SignOutRedirectURL
	}
	if v := r.FormValue(handoff.QueryRedirectURI); v != "" {
		if u, err := url.Parse(v); err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, r.Host) {
			back = u.String()
		}
	}
	var handle string
	if c, err := r.Cookie(st.cfg.CookieName); err == nil {
		handle = c.Value
	}
	http.SetCookie(w, sessionCookie(st.cfg, r.Host, ""))
	w.Header().Set("Cache-Control", "no-store")
	if st.cfg.AuthenticateURLParsed == nil {
		http.Redirect(w, r, back, http.StatusFound)
		return
	}
	u := handoff.SignOutURL(st.cfg.AuthenticateURLParsed, back, handle, st.cfg.URLKey, st.cipher, s.now())
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// serveProgrammaticLogin answers the sign-in URL for an API client as
// text. After sign-in, authenticate sends the session handle to the
// redirect URI as pomerium_jwt, so the redirect URI must be one the
// operator allows (programmatic_redirect_domain_whitelist, localhost by
// default) or this route host: otherwise anyone could mint a link that
// hands a victim's session to their own site.
func (s *Service) serveProgrammaticLogin(w http.ResponseWriter, r *http.Request, st *state, reqID string) {
	raw := r.URL.Query().Get(handoff.QueryRedirectURI)
	u, err := url.Parse(raw)
	if raw == "" || err != nil || !allowedProgrammaticRedirect(u, r.Host, st.cfg.ProgrammaticRedirectDomainWhitelist) {
		writeError(w, r, http.StatusBadRequest, msgBadRedirect, reqID)
		return
	}
	if st.cfg.AuthenticateURLParsed == nil {
		writeError(w, r, http.StatusServiceUnavailable, msgAuthUnavailable, reqID)
		return
	}
	signIn := handoff.SignInURL(st.cfg.AuthenticateURLParsed, u.String(), true, st.cfg.URLKey, s.now())
	body := signIn.String()
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
}

var defaultProgrammaticRedirects = []string{"localhost", "127.0.0.1", "::1"}

func allowedProgrammaticRedirect(u *url.URL, host string, whitelist []string) bool {
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	if h == strings.ToLower(routematch.Hostname(host)) {
		return true
	}
	if len(whitelist) == 0 {
		whitelist = defaultProgrammaticRedirects
	}
	for _, d := range whitelist {
		d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "."))
		if d != "" && (h == d || strings.HasSuffix(h, "."+d)) {
			return true
		}
	}
	return false
}
