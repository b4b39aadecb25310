package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/pages"
)

// Paths of the routes portal, as Pomerium serves them.
const (
	portalPath    = "/.pomerium/routes"
	portalAPIPath = "/.pomerium/api/v1/routes"
)

// portalRoute is one route of the portal, in the JSON of Pomerium's
// /.pomerium/api/v1/routes.
type portalRoute struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	LogoURL     string `json:"logo_url,omitempty"`
	From        string `json:"from"`
	Type        string `json:"type"`
}

// portalRoutes returns the routes the request's user may open: one Check
// per route, at the route's from URL (and prefix or path), with the
// request's credentials, so that the list shows what authorize would let
// through and nothing else. A route authorize cannot answer for is left
// out (fail closed).
func (s *Service) portalRoutes(r *http.Request, st *state, credential, reqID string) []portalRoute {
	out := []portalRoute{}
	seen := map[string]bool{}
	for i := range st.cfg.Routes {
		cr := &st.cfg.Routes[i]
		if cr.FromURL == nil || seen[cr.ID] {
			continue
		}
		seen[cr.ID] = true
		path := "/"
		switch {
		case cr.Path != "":
			path = cr.Path
		case cr.Prefix != "":
			path = cr.Prefix
		}
		probe := r.Clone(r.Context())
		probe.Method = http.MethodGet
		probe.Host = cr.FromURL.Host
		probe.URL = &url.URL{Path: path}
		in := &checkInput{r: probe, requestID: reqID, credential: credential, routeID: cr.ID,
			scheme: cr.FromURL.Scheme}
		in.clientIP, _ = clientIP(r, st.hops)
		resp, err := s.check(r.Context(), in)
		if err != nil || !allowed(resp) {
			continue
		}
		u := *cr.FromURL
		u.Path = path
		out = append(out, portalRoute{ID: cr.ID, Name: routeName(cr), Description: cr.Description,
			LogoURL: cr.LogoURL, From: u.String(), Type: "http"})
	}
	return out
}

// routeName is the route's name, else its from host.
func routeName(cr *config.Route) string {
	if cr.Name != "" {
		return cr.Name
	}
	return cr.FromURL.Hostname()
}

// servePortal writes the routes portal: JSON for the API path and API
// clients, else a page of the shared set (pkg/pages) listing them.
func (s *Service) servePortal(w http.ResponseWriter, r *http.Request, st *state, credential, reqID string) {
	routes := s.portalRoutes(r, st, credential, reqID)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if r.URL.Path == portalAPIPath || wantsJSON(r) {
		h.Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Routes []portalRoute `json:"routes"`
		}{routes})
		return
	}
	p := &pages.Page{
		Brand:     st.brand,
		Title:     "Your applications",
		Lead:      []string{"The applications behind this gatehouse that you may open."},
		RequestID: reqID,
		Actions:   []pages.Action{{Label: "Your account", Href: handoff.UserPagePath}},
	}
	if len(routes) == 0 {
		p.Lead = []string{"No application behind this gatehouse is open to you."}
	}
	for _, rt := range routes {
		p.Facts = append(p.Facts, pages.Row{Label: rt.Name, Value: rt.Description, Href: rt.From, Icon: pageImage(rt.LogoURL)})
	}
	pages.Write(w, r, http.StatusOK, p)
}

// pageImage is u when it is an http(s) URL a page may show, else "".
func pageImage(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return ""
	}
	return u
}
