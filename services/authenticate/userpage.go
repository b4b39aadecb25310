package authenticate

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/pages"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
)

// userInfo is the signed-in user as /.pomerium/ shows it and
// /.pomerium/user returns it.
type userInfo struct {
	UserID    string         `json:"user_id"`
	SessionID string         `json:"session_id"`
	Email     string         `json:"email"`
	Name      string         `json:"name"`
	Groups    []string       `json:"groups"`
	Claims    map[string]any `json:"claims"`
	IssuedAt  time.Time      `json:"issued_at"`
	ExpiresAt time.Time      `json:"expires_at"`
}

// errNoSession means the request carries no live session.
var errNoSession = errors.New("not signed in")

// currentUser returns the user and session of r's session handle.
func (s *Service) currentUser(r *http.Request, st *state, now time.Time) (*userv1.User, *sessionv1.Session, error) {
	h := s.handleFromRequest(r, st, now)
	if h == nil {
		return nil, nil, errNoSession
	}
	sess, err := s.getSession(r.Context(), h.ID, now)
	if err != nil {
		return nil, nil, err
	}
	if sess == nil {
		return nil, nil, errNoSession
	}
	u, err := s.getUser(r.Context(), sess.UserId)
	if err != nil {
		return nil, nil, err
	}
	if u == nil {
		u = &userv1.User{Id: sess.UserId}
	}
	return u, sess, nil
}

func infoOf(u *userv1.User, sess *sessionv1.Session) userInfo {
	claims := sess.GetClaims()
	if len(claims) == 0 {
		claims = u.GetClaims()
	}
	groups := claimStrings(claims, "groups")
	if groups == nil {
		groups = []string{}
	}
	return userInfo{
		UserID:    u.GetId(),
		SessionID: sess.GetId(),
		Email:     u.GetEmail(),
		Name:      u.GetName(),
		Groups:    groups,
		Claims:    claimsJSON(claims),
		IssuedAt:  sess.GetIssuedAt().AsTime().UTC(),
		ExpiresAt: sess.GetExpiresAt().AsTime().UTC(),
	}
}

// handleUserPage serves /.pomerium/ on the authenticate host: the signed-in
// user as an HTML page with a sign-out button (JSON for API clients).
// A browser without a session is sent to sign in and comes back here.
func (s *Service) handleUserPage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != handoff.UserPagePath {
		s.fail(w, r, problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Message: "There is nothing at this address on the sign-in service."})
		return
	}
	if !s.methods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	st, now := s.state.Load(), s.now()
	u, sess, err := s.currentUser(r, st, now)
	switch {
	case errors.Is(err, errNoSession):
		if apiClient(r) {
			s.fail(w, r, problem{Status: http.StatusUnauthorized, Code: "unauthenticated", Title: "Not signed in",
				Message: "This request carries no valid session."})
			return
		}
		here := url.URL{Scheme: st.authURL.Scheme, Host: st.authURL.Host, Path: handoff.UserPagePath}
		setPageHeaders(w)
		http.Redirect(w, r, st.signInURLFor(here.String(), now), http.StatusFound)
		return
	case err != nil:
		s.fail(w, r, dataBrokerProblem())
		return
	}
	info := infoOf(u, sess)
	if apiClient(r) {
		writeJSON(w, http.StatusOK, info)
		return
	}
	s.page(w, r, http.StatusOK, userPage(info, sess, st.signOutToken(sess.GetId())))
}

// handleUserJSON serves /.pomerium/user: the signed-in user as JSON, or 401.
func (s *Service) handleUserJSON(w http.ResponseWriter, r *http.Request) {
	if !s.methods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	st, now := s.state.Load(), s.now()
	u, sess, err := s.currentUser(r, st, now)
	switch {
	case errors.Is(err, errNoSession):
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "unauthenticated", "error_description": "This request carries no valid session."})
		return
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "session_store_unavailable", "error_description": ErrDataBroker.Error()})
		return
	}
	writeJSON(w, http.StatusOK, infoOf(u, sess))
}

// userPage is the authenticate host's /.pomerium/ page.
func userPage(info userInfo, sess *sessionv1.Session, csrf string) *pages.Page {
	groups := "none"
	if len(info.Groups) > 0 {
		groups = strings.Join(info.Groups, ", ")
	}
	title := "Signed in"
	if info.Name != "" {
		title += " as " + info.Name
	} else if info.Email != "" {
		title += " as " + info.Email
	}
	claims := make(map[string]any, len(sess.GetClaims()))
	for k, v := range sess.GetClaims() {
		if vs := v.AsSlice(); len(vs) == 1 {
			claims[k] = vs[0]
		} else {
			claims[k] = vs
		}
	}
	return &pages.Page{
		Title: title,
		Email: info.Email,
		Lead:  []string{"You are signed in to every application behind this gatehouse with this account."},
		Facts: []pages.Row{
			{Label: "Email", Value: info.Email},
			{Label: "Name", Value: info.Name},
			{Label: "User ID", Value: info.UserID, Code: true},
			{Label: "Groups", Value: groups},
			{Label: "Session ID", Value: info.SessionID, Code: true},
			pages.TimeRow("Signed in", info.IssuedAt, info.IssuedAt.Format(time.RFC3339)),
			pages.TimeRow("Session expires", info.ExpiresAt, info.ExpiresAt.Format(time.RFC3339)),
		},
		Actions: []pages.Action{
			{Label: "Sign out", Primary: true, Post: handoff.SignOutPath, Fields: []pages.Field{{Name: "csrf_token", Value: csrf}}},
		},
		ClaimsTitle: "Claims from the identity provider",
		ClaimsHint:  "The ID token's and userinfo's claims, as policies read them. Hover over a date for its raw value.",
		Claims:      pages.ClaimRows(claims),
	}
}
