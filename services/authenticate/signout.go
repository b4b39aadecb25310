package authenticate

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/pages"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
)

// SignedOutPath is the page shown after a sign-out that has nowhere else to
// go (and the post_logout_redirect_uri given to the IdP in that case).
const SignedOutPath = handoff.SignedOutPath

// ErrSignOutCSRF means a sign-out POST carried no valid CSRF token.
var ErrSignOutCSRF = handoff.ErrSignOutCSRF

// signOutToken is the CSRF token of the sign-out form for a session (""
// when there is none): handoff.SignOutToken of the session id, shared with
// the proxy's sign-out form.
func (st *state) signOutToken(sessionID string) string {
	return handoff.SignOutToken(st.cfg.CookieKey, sessionID)
}

func (st *state) checkSignOutToken(sessionID, token string) error {
	return handoff.CheckSignOutToken(st.cfg.CookieKey, sessionID, token)
}

// handleSignOut serves /.pomerium/sign_out. A signed URL (handoff.SignOutURL,
// naming the session to end) or a POST with the form's CSRF token signs
// out; any other GET shows a confirmation form, so a cross-site link cannot
// sign anyone out.
func (s *Service) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if !s.methods(w, r, http.MethodGet, http.MethodHead, http.MethodPost) {
		return
	}
	st, now := s.state.Load(), s.now()
	h := s.handleFromRequest(r, st, now)
	sid := ""
	if h != nil {
		sid = h.ID
	}
	var redirectRaw string
	foreign := false // the session ended is not this browser's own
	switch r.Method {
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormSize)
		if err := r.ParseForm(); err != nil {
			s.fail(w, r, problem{Status: http.StatusBadRequest, Code: "bad_form", Title: "Bad request", Message: "The sign-out form could not be read."})
			return
		}
		if err := st.checkSignOutToken(sid, r.PostForm.Get("csrf_token")); err != nil {
			s.fail(w, r, problem{Status: http.StatusBadRequest, Code: "csrf_invalid", Title: "Sign-out not confirmed",
				Message: "This sign-out request did not come from gatehouse's sign-out form.",
				Hint:    "Open the sign-out page again and press Sign out."})
			return
		}
		redirectRaw = r.PostForm.Get(handoff.QueryRedirectURI)
	default:
		// Only a signed GET signs out; HEAD never has side effects.
		if r.Method != http.MethodGet || !r.URL.Query().Has(cryptutil.QuerySignature) {
			s.confirmSignOut(w, r, st, h)
			return
		}
		if err := st.verifySigned(r, now); err != nil {
			p := signedURLProblem(err)
			p.Title = "Invalid sign-out link"
			p.Hint = "Open the sign-out page of gatehouse to sign out."
			s.fail(w, r, p)
			return
		}
		redirectRaw = r.URL.Query().Get(handoff.QueryRedirectURI)
		// The signed URL names the session it ends: the route host's,
		// sealed by the proxy after its own confirmed POST. It is that
		// session that ends, not whichever this browser holds: a signed
		// URL an attacker got for their own session, opened in a victim's
		// browser, ends only the attacker's.
		var named *sessionhandle.Handle
		if tok := handoff.SignOutHandle(r.URL, r.Host, st.cipher); tok != "" {
			named, _ = sessionhandle.Decode(st.cfg.HandleKey, tok, now)
		}
		if named == nil {
			s.confirmSignOut(w, r, st, h)
			return
		}
		if h != nil && h.ID != named.ID {
			foreign = true
		}
		h = named
	}
	var ret *url.URL
	if redirectRaw != "" {
		var err error
		if ret, err = st.checkRedirect(redirectRaw, false); err != nil {
			s.fail(w, r, redirectProblem)
			return
		}
	}

	var sess *sessionv1.Session
	pending := false
	if h != nil {
		var err error
		sess, err = s.getSession(r.Context(), h.ID, now)
		if err == nil {
			err = s.deleteSession(r.Context(), h.ID)
		}
		if err != nil {
			// No databroker answered in time: the sign-out is queued and
			// retried until the delete lands (revocationQueue), and the
			// page says it is pending, never that it is done.
			pending = true
			qerr := s.revocations.add(revocation{SessionID: h.ID, UserID: h.UserID, Queued: now})
			s.log.Warn("authenticate: sign-out could not delete the session; queued, retrying until it lands",
				"user", h.UserID, "error", err.Error(), "queue_error", fmt.Sprint(qerr))
		} else {
			s.log.Info("authenticate: signed out", "user", h.UserID)
			s.metrics.signOuts.Inc()
		}
	}
	if pending {
		if !foreign {
			s.clearSessionCookies(w, st)
		}
		s.signOutPending(w, r)
		return
	}
	if foreign {
		// This browser's own session and its IdP session stay.
		target := st.cfg.SignOutRedirectURL
		if ret != nil {
			target = ret.String()
		}
		setPageHeaders(w)
		if target != "" {
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		s.signedOutPage(w, r)
		return
	}
	s.clearSessionCookies(w, st)
	s.finishSignOut(w, r, st, sess, ret)
}

// clearSessionCookies removes the session cookie, host-only and on
// cookie_domain.
func (s *Service) clearSessionCookies(w http.ResponseWriter, st *state) {
	clearCookie(w, st, st.cfg.CookieName, "")
	if st.cfg.CookieDomain != "" {
		clearCookie(w, st, st.cfg.CookieName, st.cfg.CookieDomain)
	}
}

// finishSignOut revokes the session's refresh token at the IdP and sends
// the browser to the IdP's end_session_endpoint, else to the return URL or
// signout_redirect_url, else to the signed-out page.
func (s *Service) finishSignOut(w http.ResponseWriter, r *http.Request, st *state, sess *sessionv1.Session, ret *url.URL) {
	target := st.cfg.SignOutRedirectURL
	if ret != nil {
		target = ret.String()
	}
	setPageHeaders(w)
	// The IdP is asked only when it has been discovered already or answers
	// now; a sign-out never waits on a dead IdP.
	d := st.idp.cached()
	if d == nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		d, _ = st.idp.discover(ctx)
		cancel()
	}
	if d != nil && sess != nil {
		if rt := sess.GetOauthToken().GetRefreshToken(); rt != "" {
			if err := st.idp.revoke(r.Context(), d, rt, "refresh_token"); err != nil {
				s.log.Warn("authenticate: refresh token revocation failed", "user", sess.UserId, "error", err)
			}
		}
	}
	if d != nil && d.endSession != "" {
		u, err := url.Parse(d.endSession)
		if err == nil {
			// The IdP comes back to one fixed URL on the authenticate host
			// (the one to register with the IdP as post-logout redirect),
			// carrying the sealed destination in state: IdPs match that
			// URL exactly, and route hosts are not registered with them.
			signedOut := *st.authURL
			signedOut.Path, signedOut.RawPath, signedOut.RawQuery = SignedOutPath, "", ""
			q := u.Query()
			if raw := sess.GetIdToken().GetRaw(); raw != "" {
				q.Set("id_token_hint", raw)
			}
			q.Set("client_id", st.idp.settings.clientID)
			q.Set("post_logout_redirect_uri", signedOut.String())
			if target != "" {
				q.Set("state", st.cipher.Seal([]byte(target), []byte(SignedOutPath)))
			}
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.String(), http.StatusFound)
			return
		}
	}
	if target != "" {
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	s.signedOutPage(w, r)
}

// confirmSignOut shows the sign-out confirmation form.
func (s *Service) confirmSignOut(w http.ResponseWriter, r *http.Request, st *state, h *sessionhandle.Handle) {
	var email, redirectURI string
	sid := ""
	if h != nil {
		sid = h.ID
		if u, err := s.getUser(r.Context(), h.UserID); err == nil && u != nil {
			email = u.Email
		}
	}
	csrf := st.signOutToken(sid)
	if raw := r.URL.Query().Get(handoff.QueryRedirectURI); raw != "" {
		if ret, err := st.checkRedirect(raw, false); err == nil {
			redirectURI = ret.String()
		}
	}
	if apiClient(r) {
		writeJSON(w, http.StatusOK, map[string]any{"csrf_token": csrf, "method": "POST", "action": handoff.SignOutPath})
		return
	}
	fields := []pages.Field{{Name: "csrf_token", Value: csrf}}
	if redirectURI != "" {
		fields = append(fields, pages.Field{Name: handoff.QueryRedirectURI, Value: redirectURI})
	}
	p := &pages.Page{
		Title: "Sign out?",
		Email: email,
		Lead:  []string{"Signing out ends your session on every application behind this gatehouse."},
		Actions: []pages.Action{
			{Label: "Sign out", Primary: true, Post: handoff.SignOutPath, Fields: fields},
			{Label: "Cancel", Href: handoff.UserPagePath},
		},
	}
	if email != "" {
		p.Lead = []string{"You are signed in as " + email + ". Signing out ends your session on every application behind this gatehouse."}
	}
	s.page(w, r, http.StatusOK, p)
}

// handleSignedOut serves the page shown after a sign-out.
func (s *Service) handleSignedOut(w http.ResponseWriter, r *http.Request) {
	if !s.methods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	// Back from the IdP's logout: go on to where the sign-out was headed,
	// if the sealed state says so and it is still an allowed destination.
	if sealed := r.URL.Query().Get("state"); sealed != "" {
		st := s.state.Load()
		if raw, err := st.cipher.Open(sealed, []byte(SignedOutPath)); err == nil {
			target := string(raw)
			if target == st.cfg.SignOutRedirectURL {
				http.Redirect(w, r, target, http.StatusFound)
				return
			}
			if ret, err := st.checkRedirect(target, false); err == nil {
				http.Redirect(w, r, ret.String(), http.StatusFound)
				return
			}
		}
	}
	s.signedOutPage(w, r)
}

// signInURLFor returns a signed sign-in URL that comes back to ret on the
// authenticate host.
func (st *state) signInURLFor(ret string, now time.Time) string {
	return handoff.SignInURL(st.authURL, ret, false, st.cfg.URLKey, now).String()
}

// signOutPending answers a sign-out that could not be written yet: 202
// with a page (or JSON) that says so. The browser's cookie is already
// cleared; the session itself ends when the queued delete lands.
func (s *Service) signOutPending(w http.ResponseWriter, r *http.Request) {
	if apiClient(r) {
		writeJSON(w, http.StatusAccepted, map[string]any{
			"status": "pending",
			"error_description": "The session store is unavailable: this client's session cookie was removed, " +
				"and the session will be ended as soon as the store can be reached (gatehouse keeps retrying).",
		})
		return
	}
	s.page(w, r, http.StatusAccepted, &pages.Page{
		Title: "Sign-out pending",
		Lead: []string{
			"This browser is signed out, but gatehouse cannot reach its session store right now, so your session is not ended everywhere yet. gatehouse keeps trying and ends it as soon as the store is back.",
			"Until then, anyone holding a copy of this session (its cookie or token) can still use it.",
		},
	})
}

// completeSignOut writes a queued sign-out (revocationQueue): it deletes
// the session record and then, best effort, revokes the session's refresh
// token at the identity provider, as a sign-out that went through at once
// does. It fails while the databroker does not answer.
func (s *Service) completeSignOut(ctx context.Context, r revocation) error {
	sess, err := s.getSession(ctx, r.SessionID, s.now())
	if err != nil {
		return err
	}
	if err := s.deleteSession(ctx, r.SessionID); err != nil {
		return err
	}
	st := s.state.Load()
	if d := st.idp.cached(); d != nil && sess != nil {
		if rt := sess.GetOauthToken().GetRefreshToken(); rt != "" {
			if err := st.idp.revoke(ctx, d, rt, "refresh_token"); err != nil {
				s.log.Warn("authenticate: refresh token revocation failed", "user", r.UserID, "error", err)
			}
		}
	}
	return nil
}
