package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/pages"
	"github.com/gatehouse/gatehouse/pkg/routematch"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
)

// servePomerium serves the /.pomerium/ pages of a route host.
// It returns the route id and decision for the access log.
func (s *Service) servePomerium(w http.ResponseWriter, r *http.Request, st *state, credential, reqID string) (routeID string, d decision) {
	st.setResponseHeaders(w, r)
	cr := st.table.MatchHost(r.Host)
	if cr == nil {
		writeError(w, r, http.StatusNotFound, msgNotFound, reqID)
		return "", decisionNoRoute
	}
	routeID = cr.ID
	p := requestPath(r)
	switch p {
	case "/.pomerium":
		http.Redirect(w, r, handoff.UserPagePath, http.StatusFound)
		return routeID, decisionInternal
	case handoff.CallbackPath, "/.pomerium/callback":
		if !allowMethods(w, r, reqID, http.MethodGet, http.MethodHead) {
			return routeID, decisionInvalid
		}
		s.serveCallback(w, r, st, cr, reqID)
		return routeID, decisionInternal
	case handoff.SignOutPath:
		if !allowMethods(w, r, reqID, http.MethodGet, http.MethodHead, http.MethodPost) {
			return routeID, decisionInvalid
		}
		s.serveSignOut(w, r, st, cr, reqID)
		return routeID, decisionInternal
	case handoff.SignedOutPath:
		if !allowMethods(w, r, reqID, http.MethodGet, http.MethodHead) {
			return routeID, decisionInvalid
		}
		serveSignedOut(w, r, st, reqID)
		return routeID, decisionInternal
	case handoff.ProgrammaticLogin:
		if !allowMethods(w, r, reqID, http.MethodGet, http.MethodHead) {
			return routeID, decisionInvalid
		}
		s.serveProgrammaticLogin(w, r, st, reqID)
		return routeID, decisionInternal
	case handoff.JWTPath:
		if !st.cfg.JWTEndpointEnabled() {
			// Off unless runtime_flags turns it on, as in Pomerium.
			writeError(w, r, http.StatusNotFound, "There is no such page.", reqID)
			return routeID, decisionInternal
		}
		if !allowMethods(w, r, reqID, http.MethodGet, http.MethodHead) {
			return routeID, decisionInvalid
		}
	case handoff.UserPagePath, handoff.UserJSONPath, portalPath, portalAPIPath:
		if !allowMethods(w, r, reqID, http.MethodGet, http.MethodHead) {
			return routeID, decisionInvalid
		}
	default:
		writeError(w, r, http.StatusNotFound, "There is no such page.", reqID)
		return routeID, decisionInternal
	}

	// The identity pages ask authorize for the signed-in user.
	answer, d := s.checkRequest(w, r, st, cr, nil, &checkInput{r: r, requestID: reqID, credential: credential, routeID: routeID, internal: true})
	if d != decisionAllow {
		return routeID, d
	}
	if p == portalPath || p == portalAPIPath {
		s.servePortal(w, r, st, credential, reqID)
		return routeID, decisionAllow
	}
	jwt := identityJWT(answer)
	payload, ok := jwtPayload(jwt)
	if !ok {
		writeError(w, r, http.StatusUnauthorized, msgNotSignedIn, reqID)
		return routeID, decisionDeny
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
			return routeID, decisionDeny
		}
		if wantsJSON(r) {
			h.Set("Content-Type", "application/json")
			_, _ = w.Write(payload)
			return routeID, decisionAllow
		}
		// The page's sign-out button must not be clickjacked: pages.Write
		// forbids framing.
		csrf := handoff.SignOutToken(st.cfg.CookieKey, sessionhandle.CookieFromHeader(r.Header, st.cfg.CookieName))
		pages.Write(w, r, http.StatusOK, userPage(st.brand, claims, jwt, csrf, reqID, st.cfg.JWTEndpointEnabled()))
	}
	return routeID, decisionAllow
}

// identityJWT returns the identity JWT of authorize's OK answer ("" when
// there is none).
func identityJWT(answer *authv3.OkHttpResponse) string {
	var jwt string
	for _, o := range answer.GetHeaders() {
		if strings.EqualFold(o.GetHeader().GetKey(), headerJWTAssertion) {
			jwt = o.GetHeader().GetValue()
		}
	}
	return jwt
}

// signedInEmail asks authorize who r's session belongs to, as the user
// page does, and returns the email ("" when there is no live session or
// authorize cannot say). It writes nothing to the client.
func (s *Service) signedInEmail(r *http.Request, st *state, route *config.Route, reqID string) string {
	in := &checkInput{r: r, requestID: reqID, routeID: route.ID, internal: true, scheme: requestScheme(r, st.hops)}
	in.clientIP, _ = clientIP(r, st.hops)
	resp, err := s.check(r.Context(), in)
	if err != nil || !allowed(resp) {
		return ""
	}
	payload, ok := jwtPayload(identityJWT(resp.GetOkResponse()))
	if !ok {
		return ""
	}
	var c struct {
		Email string `json:"email"`
	}
	_ = json.Unmarshal(payload, &c)
	return c.Email
}

// serveSignedOut shows the page a sign-out on this host ends on: it says
// so and offers to sign in again, to this host's start page.
func serveSignedOut(w http.ResponseWriter, r *http.Request, st *state, reqID string) {
	pages.Write(w, r, http.StatusOK, &pages.Page{
		Brand: st.brand,
		Title: "You are signed out",
		Lead: []string{"Your session has ended on every application behind this gatehouse, and at the identity provider when it supports that.",
			"To be safe on a shared computer, close the browser when you are done."},
		Actions:   []pages.Action{{Label: "Sign in again", Href: "/", Primary: true}},
		RequestID: reqID,
	})
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
// for. The callback is accepted once, and only from the browser that holds
// its sign-in binding cookie (see handoff.Binding): a callback URL that
// leaked, or one an attacker got for their own account, opens no session
// in any other browser.
func (s *Service) serveCallback(w http.ResponseWriter, r *http.Request, st *state, route *config.Route, reqID string) {
	if st.cipher == nil || len(st.cfg.URLKey) == 0 {
		writeError(w, r, http.StatusBadRequest, msgBadCallback, reqID)
		return
	}
	now := s.now()
	scheme := requestScheme(r, st.hops)
	u := &url.URL{Scheme: scheme, Host: r.Host, Path: handoff.CallbackPath, RawQuery: r.URL.RawQuery}
	cb, err := handoff.OpenCallback(u, r.Host, st.cfg.URLKey, st.cipher, now)
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
		cb, err2 = handoff.OpenCallback(&other, r.Host, st.cfg.URLKey, st.cipher, now)
		if err2 != nil {
			s.logger.Info("bad sign-in callback", "request_id", reqID, "host", r.Host, "reason", err.Error())
			writeError(w, r, http.StatusBadRequest, msgBadCallback, reqID)
			return
		}
	}
	secure := st.cfg.CookieSecureFor(route.FromURL)
	w.Header().Set("Cache-Control", "no-store")
	http.SetCookie(w, handoff.ClearBindingCookie(cb.BindingID, secure))
	// Used once, whichever browser comes first: a victim's browser opening
	// an attacker's link burns it too. The proxy has no databroker client,
	// so the record is this process's; across replicas the binding cookie,
	// cleared here, and the callback's one-minute TTL do the rest.
	if !s.usedBindings.Use(cb.BindingID, cb.Expiry, now) {
		s.logger.Info("sign-in callback replayed", "request_id", reqID, "host", r.Host)
		writeError(w, r, http.StatusBadRequest, msgCallbackUsed, reqID)
		return
	}
	if _, err := handoff.VerifyBinding(cb.Binding, r); err != nil {
		s.logger.Info("sign-in callback from another browser", "request_id", reqID, "host", r.Host, "reason", err.Error())
		writeError(w, r, http.StatusBadRequest, msgCallbackUsed, reqID)
		return
	}
	http.SetCookie(w, sessionCookie(st.cfg, r.Host, cb.Handle, secure))
	http.Redirect(w, r, cb.RedirectURI.String(), http.StatusFound)
}

// sessionCookie is the route host's session cookie holding handle; an
// empty handle makes the cookie that clears it. secure is
// cfg.CookieSecureFor(the route's from URL).
func sessionCookie(cfg *config.Config, host, handle string, secure bool) *http.Cookie {
	c := &http.Cookie{
		Name:     cfg.CookieName,
		Value:    handle,
		Path:     "/",
		Secure:   secure,
		HttpOnly: true,
		SameSite: cfg.CookieSameSiteMode(),
		MaxAge:   int(cfg.CookieExpire.Std().Seconds()),
		Domain:   cookieDomainFor(cfg.CookieDomain, host),
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

// serveSignOut serves the route host's /.pomerium/sign_out. A GET (or HEAD)
// only shows a confirmation form, so that a link or image on another site
// signs no one out; the form's POST, with its CSRF token (bound to the
// route cookie, see handoff.SignOutToken), clears the route host's cookie
// and sends the user to authenticate's signed sign-out, which ends the
// session everywhere and comes back to the route host (or
// signout_redirect_url, or the pomerium_redirect_uri given, when it is on
// this host). Authenticate's own sign-out works the same way; Pomerium
// likewise requires a CSRF token on its sign-out endpoint, GET or POST.
func (s *Service) serveSignOut(w http.ResponseWriter, r *http.Request, st *state, route *config.Route, reqID string) {
	handle := sessionhandle.CookieFromHeader(r.Header, st.cfg.CookieName)
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		s.confirmSignOut(w, r, st, route, handle, signOutReturn(r, st, r.URL.Query().Get(handoff.QueryRedirectURI)), reqID)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormSize)
	if err := r.ParseForm(); err != nil {
		writeError(w, r, http.StatusBadRequest, "The sign-out form could not be read.", reqID)
		return
	}
	if err := handoff.CheckSignOutToken(st.cfg.CookieKey, handle, r.PostForm.Get(handoff.QueryCSRFToken)); err != nil {
		s.logger.Info("sign-out refused", "request_id", reqID, "host", r.Host, "reason", err.Error())
		writeError(w, r, http.StatusForbidden, msgSignOutNotConfirmed, reqID)
		return
	}
	back := signOutReturn(r, st, r.PostForm.Get(handoff.QueryRedirectURI))
	http.SetCookie(w, sessionCookie(st.cfg, r.Host, "", st.cfg.CookieSecureFor(route.FromURL)))
	auth := st.cfg.AuthenticateURLParsed
	switch {
	case auth == nil:
		http.Redirect(w, r, back, http.StatusFound)
	case handle == "":
		// No session on this host, so nothing vouches that the user asked
		// for it: authenticate's own confirmation page decides.
		u := *auth
		u.Path, u.RawPath, u.RawQuery = handoff.SignOutPath, "", url.Values{handoff.QueryRedirectURI: {back}}.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	default:
		u := handoff.SignOutURL(auth, back, handle, st.cfg.URLKey, st.cipher, s.now())
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
}

// signOutReturn is where a sign-out on this host ends: raw when it is an
// http(s) URL on this host, else signout_redirect_url, else this host's
// "You are signed out" page (never straight back to a page that would send
// the browser to sign in again).
func signOutReturn(r *http.Request, st *state, raw string) string {
	if raw != "" {
		if u, err := url.Parse(raw); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.User == nil && strings.EqualFold(u.Host, r.Host) {
			return u.String()
		}
	}
	if st.cfg.SignOutRedirectURL != "" {
		return st.cfg.SignOutRedirectURL
	}
	return (&url.URL{Scheme: requestScheme(r, st.hops), Host: r.Host, Path: handoff.SignedOutPath}).String()
}

// serveProgrammaticLogin answers the sign-in URL for an API client as
// text. After sign-in, authenticate sends the session handle to the
// redirect URI as pomerium_jwt, so the redirect URI must be on
// programmatic_redirect_domain_whitelist (localhost by default), checked by
// handoff.ProgrammaticRedirect as authenticate checks it: otherwise anyone
// could mint a link that hands a victim's session to their own site, or to
// a route's upstream and its logs.
func (s *Service) serveProgrammaticLogin(w http.ResponseWriter, r *http.Request, st *state, reqID string) {
	u, err := handoff.ProgrammaticRedirect(r.URL.Query().Get(handoff.QueryRedirectURI), st.cfg.ProgrammaticRedirectDomainWhitelist)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, msgBadProgrammaticRedirect, reqID)
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
