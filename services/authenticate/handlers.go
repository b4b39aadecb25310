package authenticate

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
	"github.com/gatehouse/gatehouse/pkg/signingkey"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
)

// maxFormSize bounds a POSTed form (the IdP's form_post, sign-out).
const maxFormSize = 64 << 10

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(handoff.SignInPath, s.handleSignIn)
	mux.HandleFunc(handoff.SignOutPath, s.handleSignOut)
	mux.HandleFunc(handoff.UserPagePath, s.handleUserPage)
	mux.HandleFunc(handoff.UserJSONPath, s.handleUserJSON)
	mux.HandleFunc(SignedOutPath, s.handleSignedOut)
	mux.HandleFunc(signingkey.JWKSPath, func(w http.ResponseWriter, r *http.Request) {
		s.state.Load().jwks.ServeHTTP(w, r)
	})
	mux.HandleFunc(signingkey.WellKnownPath, func(w http.ResponseWriter, r *http.Request) {
		s.state.Load().wellKnown.ServeHTTP(w, r)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			http.Redirect(w, r, handoff.UserPagePath, http.StatusFound)
			return
		}
		s.fail(w, r, problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Message: "There is nothing at this address on the sign-in service."})
	})
	// The callback path is configurable (authenticate_callback_path) and
	// may change on reload, so it is matched before the mux.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == s.state.Load().cfg.AuthenticateCallbackPath {
			s.handleCallback(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// methods answers 405 unless r's method is one of allowed.
func (s *Service) methods(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for _, m := range allowed {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	s.fail(w, r, problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Title: "Method not allowed",
		Message: fmt.Sprintf("This address does not accept %s requests.", r.Method)})
	return false
}

// verifySigned checks that r is a URL signed with shared_secret, as handoff
// builds them on the authenticate_service_url.
func (st *state) verifySigned(r *http.Request, now time.Time) error {
	u := url.URL{Scheme: st.authURL.Scheme, Host: st.authURL.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	return cryptutil.VerifySignedURL(st.cfg.URLKey, &u, now)
}

// signedURLProblem is the page for a bad signed URL.
func signedURLProblem(err error) problem {
	switch {
	case errors.Is(err, cryptutil.ErrURLExpired):
		return problem{Status: http.StatusBadRequest, Code: "signed_url_expired", Title: "This sign-in link has expired",
			Message: "Sign-in links are valid for a few minutes only.",
			Hint:    "Go back to the application and try again."}
	case errors.Is(err, cryptutil.ErrURLNotYetValid):
		return problem{Status: http.StatusBadRequest, Code: "signed_url_not_yet_valid", Title: "This sign-in link is not valid yet",
			Message: "The link was issued in the future: the clocks of gatehouse's services disagree.",
			Hint:    "Ask your administrator to check the servers' time."}
	default:
		return problem{Status: http.StatusBadRequest, Code: "signed_url_invalid", Title: "Invalid sign-in link",
			Message: "This link is not signed by gatehouse, or it was modified.",
			Hint:    "Go back to the application and try again."}
	}
}

var redirectProblem = problem{Status: http.StatusBadRequest, Code: "redirect_not_allowed", Title: "Unknown destination",
	Message: "The address to return to after sign-in is not an application served by this gatehouse."}

// programmaticRedirectProblem is the page for a programmatic sign-in whose
// return URL may not receive the session handle.
var programmaticRedirectProblem = problem{Status: http.StatusBadRequest, Code: "redirect_not_allowed", Title: "Unknown destination",
	Message: "A programmatic sign-in may only return to a host listed in programmatic_redirect_domain_whitelist (by default localhost, where command-line clients listen).",
	Hint:    "Ask your administrator to add the client's host name to programmatic_redirect_domain_whitelist."}

// unboundProblem is the page for a route sign-in URL without the proxy's
// binding to the browser.
var unboundProblem = problem{Status: http.StatusBadRequest, Code: "signin_unbound", Title: "Invalid sign-in link",
	Message: "This sign-in link was not issued to a browser by gatehouse's proxy.",
	Hint:    "Go back to the application and try again."}

// redirectProblemFor is the page for a return URL checkRedirect refused.
func redirectProblemFor(programmatic bool) problem {
	if programmatic {
		return programmaticRedirectProblem
	}
	return redirectProblem
}

func idpUnavailableProblem() problem {
	return problem{Status: http.StatusServiceUnavailable, Code: "idp_unavailable", Title: "The identity provider is unavailable",
		Message: "gatehouse cannot reach the identity provider right now.",
		Hint:    "Wait a moment and try again. If this persists, ask your administrator."}
}

func dataBrokerProblem() problem {
	return problem{Status: http.StatusServiceUnavailable, Code: "session_store_unavailable", Title: "Sessions are unavailable",
		Message: "gatehouse cannot reach its session store right now.",
		Hint:    "Wait a moment and try again."}
}

// handleSignIn serves /.pomerium/sign_in: it checks the signed URL and the
// return URL, then sends the browser to the IdP (or straight back when the
// authenticate host already has a live session).
func (s *Service) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if !s.methods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	st, now := s.state.Load(), s.now()
	if err := st.verifySigned(r, now); err != nil {
		s.fail(w, r, signedURLProblem(err))
		return
	}
	q := r.URL.Query()
	programmatic := q.Get(handoff.QueryIsProgrammatic) == "true"
	ret, err := st.checkRedirect(q.Get(handoff.QueryRedirectURI), programmatic)
	if err != nil {
		s.fail(w, r, redirectProblemFor(programmatic))
		return
	}
	// A browser sign-in for a route host carries the proxy's binding to
	// the browser, which goes on into the callback URL.
	binding := q.Get(handoff.QueryBinding)
	if !programmatic && !sameHostPort(ret, st.authURL) {
		if _, err := handoff.ParseBinding(binding); err != nil {
			s.fail(w, r, unboundProblem)
			return
		}
	}

	// Single sign-on: a live session on the authenticate host is handed to
	// the route host without another round trip to the IdP.
	if h := s.handleFromRequest(r, st, now); h != nil {
		sess, err := s.getSession(r.Context(), h.ID, now)
		if err == nil && sess != nil && sess.GetUserId() == h.UserID {
			serverVersion, recordVersion, ok, err := s.touchSession(r.Context(), sess.Id, now)
			if err == nil && ok {
				s.log.Info("authenticate: sign-in with the existing session", "user", sess.UserId, "redirect_host", ret.Host)
				s.finishSignIn(w, r, st, ret, programmatic, binding, sess, serverVersion, recordVersion, now)
				return
			}
		}
	}

	d, err := st.idp.discover(r.Context())
	if err != nil {
		s.log.Warn("authenticate: identity provider unavailable", "error", err)
		s.fail(w, r, idpUnavailableProblem())
		return
	}
	as := newAuthState(ret.String(), programmatic, now)
	as.Binding = binding
	http.SetCookie(w, &http.Cookie{
		Name:     CSRFCookieName,
		Value:    as.CSRF,
		Path:     "/",
		MaxAge:   int(MaxStateAge / time.Second),
		HttpOnly: true,
		Secure:   st.secureCookies(),
		SameSite: csrfSameSite(st),
	})
	setPageHeaders(w)
	http.Redirect(w, r, d.authCodeURL(st.idp.settings, sealState(st.cipher, as), as.Nonce, as.Verifier), http.StatusFound)
}

// handleCallback serves the IdP's redirect (authenticate_callback_path).
func (s *Service) handleCallback(w http.ResponseWriter, r *http.Request) {
	if !s.methods(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	signedIn := false
	defer func() {
		result := resultFailure
		if signedIn {
			result = resultSuccess
		}
		s.metrics.signIns.WithLabelValues(result).Inc()
	}()
	st, now := s.state.Load(), s.now()
	form := r.URL.Query()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormSize)
		if err := r.ParseForm(); err != nil {
			s.fail(w, r, problem{Status: http.StatusBadRequest, Code: "bad_form", Title: "Bad request",
				Message: "The identity provider's answer could not be read."})
			return
		}
		form = r.Form
	}
	if e := form.Get("error"); e != "" {
		s.fail(w, r, idpErrorProblem(e, form.Get("error_description")))
		return
	}
	as, err := openState(st.cipher, form.Get("state"), now)
	switch {
	case errors.Is(err, ErrStateExpired):
		s.fail(w, r, problem{Status: http.StatusBadRequest, Code: "state_expired", Title: "The sign-in has expired",
			Message: fmt.Sprintf("A sign-in must be completed within %d minutes.", int(MaxStateAge/time.Minute)),
			Hint:    "Go back to the application and sign in again."})
		return
	case err != nil:
		s.fail(w, r, problem{Status: http.StatusBadRequest, Code: "state_invalid", Title: "Invalid sign-in state",
			Message: "The identity provider's answer does not belong to a sign-in started by gatehouse, or it was modified.",
			Hint:    "Go back to the application and sign in again."})
		return
	}
	var csrf string
	if c, err := r.Cookie(CSRFCookieName); err == nil {
		csrf = c.Value
	}
	if err := checkCSRF(as, csrf); err != nil {
		s.fail(w, r, problem{Status: http.StatusBadRequest, Code: "csrf_mismatch", Title: "Sign-in from another browser",
			Message: "This sign-in was not started in this browser (its sign-in cookie is missing or different).",
			Hint:    "Go back to the application and sign in again. Cookies must be enabled."})
		return
	}
	if !s.states.use(as, now) {
		s.fail(w, r, problem{Status: http.StatusBadRequest, Code: "state_replayed", Title: "Sign-in already completed",
			Message: "This sign-in answer has already been used once and cannot be used again.",
			Hint:    "Go back to the application; you may already be signed in."})
		return
	}
	clearCookie(w, st, CSRFCookieName, "")
	ret, err := st.checkRedirect(as.RedirectURI, as.Programmatic)
	if err != nil {
		s.fail(w, r, redirectProblemFor(as.Programmatic))
		return
	}
	code := form.Get("code")
	if code == "" {
		s.fail(w, r, problem{Status: http.StatusBadRequest, Code: "missing_code", Title: "Incomplete sign-in",
			Message: "The identity provider's answer has no authorization code."})
		return
	}
	d, err := st.idp.discover(r.Context())
	if err != nil {
		s.fail(w, r, idpUnavailableProblem())
		return
	}
	// RFC 9207: an IdP that names itself in the answer must be ours (a
	// mix-up attack sends another IdP's answer here).
	if iss := form.Get("iss"); iss != "" && d.checkIssuer == nil && iss != d.issuer {
		s.fail(w, r, problem{Status: http.StatusBadRequest, Code: "issuer_mismatch", Title: "Sign-in refused",
			Message: "The answer comes from another identity provider than the one gatehouse uses."})
		return
	}
	tok, err := s.exchange(r.Context(), st, d, code, as.Verifier)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			s.log.Info("authenticate: code exchange refused", "reason", re.ErrorCode)
			s.fail(w, r, problem{Status: http.StatusBadRequest, Code: "code_exchange_failed", Title: "Sign-in refused",
				Message: "The identity provider refused to complete this sign-in (the code is invalid, expired or already used).",
				Hint:    "Go back to the application and sign in again."})
			return
		}
		s.log.Warn("authenticate: code exchange failed", "error", err)
		s.fail(w, r, idpUnavailableProblem())
		return
	}
	res, err := st.idp.verify(r.Context(), d, tok, as.Nonce, true)
	if err != nil {
		s.log.Info("authenticate: ID token refused", "reason", err.Error())
		s.fail(w, r, problem{Status: http.StatusBadRequest, Code: "id_token_invalid", Title: "Sign-in refused",
			Message: "The identity provider's ID token could not be verified.",
			Hint:    "Go back to the application and sign in again."})
		return
	}
	user, sess, err := buildRecords(res, newSessionID(), now, st.cfg.CookieExpire.Std())
	if err != nil {
		s.fail(w, r, problem{Status: http.StatusBadRequest, Code: "id_token_invalid", Title: "Sign-in refused",
			Message: "The identity provider's ID token names no user."})
		return
	}
	serverVersion, recordVersion, err := s.putSignIn(r.Context(), user, sess)
	if err != nil {
		s.log.Warn("authenticate: session not stored", "error", err)
		s.fail(w, r, dataBrokerProblem())
		return
	}
	s.log.Info("authenticate: signed in", "user", user.Id, "email", user.Email, "programmatic", as.Programmatic)
	signedIn = true
	s.finishSignIn(w, r, st, ret, as.Programmatic, as.Binding, sess, serverVersion, recordVersion, now)
}

// idpErrorProblem is the page for an error the IdP sent back.
func idpErrorProblem(code, desc string) problem {
	if len(desc) > 300 {
		desc = desc[:300] + "…"
	}
	p := problem{Status: http.StatusBadRequest, Code: "idp_error", Title: "The identity provider reported an error",
		Message: fmt.Sprintf("The identity provider ended the sign-in with the error %q.", code),
		Hint:    desc}
	switch code {
	case "access_denied":
		p.Status, p.Code, p.Title = http.StatusForbidden, "idp_access_denied", "Sign-in was denied"
		p.Message = "The identity provider denied the sign-in (it was cancelled, or you are not allowed to use this application)."
	case "login_required", "consent_required", "interaction_required", "account_selection_required":
		p.Status, p.Code, p.Title = http.StatusUnauthorized, "idp_"+code, "Sign-in needed"
	case "temporarily_unavailable", "server_error":
		p.Status, p.Code = http.StatusServiceUnavailable, "idp_"+code
	}
	return p
}

// finishSignIn issues the session handle for sess, sets it as the
// authenticate host's cookie and sends the browser on: to the route host's
// callback, to ret itself when ret is on the authenticate host, or to ret
// with pomerium_jwt for a programmatic login. binding is the sign-in's
// binding to the browser (handoff.Binding), carried into the callback URL.
func (s *Service) finishSignIn(w http.ResponseWriter, r *http.Request, st *state, ret *url.URL, programmatic bool, binding string,
	sess *sessionv1.Session, serverVersion, recordVersion uint64, now time.Time) {
	handle, err := sessionhandle.Encode(st.cfg.HandleKey, &sessionhandle.Handle{
		ID:                      sess.Id,
		UserID:                  sess.UserId,
		Issuer:                  st.authURL.Hostname(),
		Audience:                []string{ret.Hostname()},
		IssuedAt:                now,
		Expiry:                  sess.GetExpiresAt().AsTime(),
		DatabrokerServerVersion: serverVersion,
		DatabrokerRecordVersion: recordVersion,
	})
	if err != nil {
		// Only a misconfigured key gets here; New refuses those.
		s.fail(w, r, problem{Status: http.StatusServiceUnavailable, Code: "session_unavailable", Title: "Sessions are unavailable",
			Message: "gatehouse could not issue a session."})
		return
	}
	setSessionCookie(w, st, handle, sess.GetExpiresAt().AsTime(), now)
	setPageHeaders(w)
	switch {
	case programmatic:
		u := *ret
		q := u.Query()
		q.Set(handoff.QueryJWT, handle)
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	case sameHostPort(ret, st.authURL):
		http.Redirect(w, r, ret.String(), http.StatusFound)
	default:
		http.Redirect(w, r, handoff.CallbackURL(ret, handle, binding, st.cfg.URLKey, st.cipher, now).String(), http.StatusFound)
	}
}

func sameHostPort(a, b *url.URL) bool {
	pa, pb := a.Port(), b.Port()
	if pa == "" {
		pa = defaultPort(a.Scheme)
	}
	if pb == "" {
		pb = defaultPort(b.Scheme)
	}
	return strings.EqualFold(a.Hostname(), b.Hostname()) && pa == pb
}

// setSessionCookie sets the session cookie on the authenticate host.
func setSessionCookie(w http.ResponseWriter, st *state, handle string, expires, now time.Time) {
	maxAge := int(st.cfg.CookieExpire.Std() / time.Second)
	if left := int(expires.Sub(now) / time.Second); left > 0 && left < maxAge {
		maxAge = left
	}
	http.SetCookie(w, &http.Cookie{
		Name:     st.cfg.CookieName,
		Value:    handle,
		Path:     "/",
		Domain:   st.cfg.CookieDomain,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   st.secureCookies(),
		SameSite: st.cfg.CookieSameSiteMode(),
	})
}

// secureCookies reports whether the authenticate host's cookies are
// Secure: whether the browser reaches authenticate_service_url over https
// (also behind a TLS-terminating load balancer with insecure_server).
func (st *state) secureCookies() bool {
	return st.cfg.CookieSecureFor(st.authURL)
}

// clearCookie removes a cookie set on the authenticate host.
func clearCookie(w http.ResponseWriter, st *state, name, domain string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/", Domain: domain, MaxAge: -1,
		HttpOnly: true, Secure: st.secureCookies(), SameSite: http.SameSiteLaxMode,
	})
}

// csrfSameSite is the CSRF cookie's SameSite: the IdP may come back with a
// cross-site POST (response_mode=form_post), which carries only
// SameSite=None cookies, and browsers accept those only when Secure.
func csrfSameSite(st *state) http.SameSite {
	if !st.secureCookies() {
		return http.SameSiteLaxMode
	}
	return http.SameSiteNoneMode
}

// handleFromRequest returns the valid session handle r carries (cookie or
// one of Pomerium's authorization headers), or nil.
func (s *Service) handleFromRequest(r *http.Request, st *state, now time.Time) *sessionhandle.Handle {
	tok, _ := sessionhandle.FromRequest(r.Header, st.cfg.CookieName)
	if tok == "" {
		return nil
	}
	h, err := sessionhandle.Decode(st.cfg.HandleKey, tok, now)
	if err != nil {
		return nil
	}
	return h
}
