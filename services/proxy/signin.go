package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/pages"
)

// Messages of the sign-in and sign-out pages.
const (
	msgCallbackUsed            = "This sign-in link was not started in this browser, or it was used already. Go back to the page you wanted and sign in again."
	msgBadProgrammaticRedirect = "This address may not receive a programmatic sign-in: pomerium_redirect_uri must be an http(s) URL on a host listed in programmatic_redirect_domain_whitelist (by default localhost, where command-line clients listen)."
	msgSignOutNotConfirmed     = "This sign-out request did not come from gatehouse's sign-out form. Open the sign-out page again and press Sign out."
)

// maxUsedBindings bounds the sign-in bindings a proxy remembers as used
// (each for about two minutes); beyond that, callbacks are refused until
// old ones expire, rather than replays let through.
const maxUsedBindings = 100_000

// bindSignIn binds a browser sign-in to this browser (see handoff.Binding):
// when authorize's answer sends the browser to authenticate's signed
// sign-in URL, the proxy sets a fresh binding cookie on the route host and
// returns the answer with the binding added to the sign-in URL. Any other
// answer is returned as it is. d is never modified (in-process answers are
// shared).
//
// The route host's cookie is only ever checked by this proxy's callback, so
// the binding is made here rather than in authorize: authorize only says
// that the user must sign in.
func (s *Service) bindSignIn(w http.ResponseWriter, st *state, route *config.Route, d *authv3.DeniedHttpResponse) *authv3.DeniedHttpResponse {
	auth := st.cfg.AuthenticateURLParsed
	if d == nil || d.GetStatus().GetCode() != http.StatusFound || auth == nil {
		return d
	}
	idx := -1
	for i, o := range d.GetHeaders() {
		if strings.EqualFold(o.GetHeader().GetKey(), "location") {
			idx = i
		}
	}
	if idx < 0 {
		return d
	}
	loc, err := url.Parse(d.GetHeaders()[idx].GetHeader().GetValue())
	if err != nil || loc.Path != handoff.SignInPath || !strings.EqualFold(loc.Scheme, auth.Scheme) || !strings.EqualFold(loc.Host, auth.Host) {
		return d
	}
	b := handoff.NewBinding()
	bound, err := handoff.BindSignInURL(loc, b.Param(), st.cfg.URLKey, s.now())
	if err != nil {
		// Not a sign-in URL of this deployment: passed on unbound, and its
		// callback will be refused.
		s.logger.Warn("proxy: sign-in redirect not bound to the browser", "reason", err.Error())
		return d
	}
	http.SetCookie(w, b.Cookie(st.cfg.CookieSecureFor(route.FromURL)))
	out := proto.Clone(d).(*authv3.DeniedHttpResponse)
	out.Headers[idx] = &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: "location", Value: bound.String()},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
	return out
}

// maxFormSize bounds a POSTed sign-out form.
const maxFormSize = 64 << 10

// confirmSignOut shows the sign-out form (JSON with the token and how to
// use it for API clients). The page may not be framed (pages.Write), so
// that no other site can trick a click on its button.
func (s *Service) confirmSignOut(w http.ResponseWriter, r *http.Request, st *state, route *config.Route, handle, back, reqID string) {
	token := handoff.SignOutToken(st.cfg.CookieKey, handle)
	h := w.Header()
	if wantsJSON(r) {
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		h.Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"csrf_token": token, "method": http.MethodPost, "action": handoff.SignOutPath, handoff.QueryRedirectURI: back,
		})
		return
	}
	p := &pages.Page{
		Brand:     st.brand,
		Title:     "Sign out?",
		RequestID: reqID,
		Actions: []pages.Action{
			{Label: "Sign out", Primary: true, Post: handoff.SignOutPath, Fields: []pages.Field{
				{Name: handoff.QueryCSRFToken, Value: token}, {Name: handoff.QueryRedirectURI, Value: back}}},
			{Label: "Cancel", Href: "/"},
		},
	}
	if handle != "" {
		p.Email = s.signedInEmail(r, st, route, reqID)
	}
	switch {
	case handle == "":
		p.Lead = []string{"You are not signed in on this site. You can still sign out of gatehouse everywhere else."}
	case p.Email != "":
		p.Lead = []string{"You are signed in as " + p.Email + ". Signing out ends your session on every application behind this gatehouse."}
	default:
		p.Lead = []string{"Signing out ends your session on every application behind this gatehouse."}
	}
	pages.Write(w, r, http.StatusOK, p)
}
