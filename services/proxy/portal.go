package proxy

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse/pkg/config"
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
// clients, a minimal HTML list otherwise (its look belongs with the other
// pages).
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
	var buf bytes.Buffer
	if err := portalTemplate.Execute(&buf, struct {
		Routes    []portalRoute
		RequestID string
	}{routes, reqID}); err != nil {
		writeError(w, r, http.StatusInternalServerError, "The page could not be shown.", reqID)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	_, _ = w.Write(buf.Bytes())
}

var portalTemplate = template.Must(template.New("routes").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Routes</title><style>` + baseCSS + `</style></head>
<body><main>
<h1>Routes</h1>
{{if .Routes}}<table>
{{range .Routes}}<tr><th>{{if .LogoURL}}<img src="{{.LogoURL}}" alt="" width="24" height="24"> {{end}}<a href="{{.From}}">{{.Name}}</a></th><td>{{.Description}}</td></tr>
{{end}}</table>{{else}}<p>No route is open to you.</p>{{end}}
{{if .RequestID}}<p class="rid">Request ID: <code>{{.RequestID}}</code></p>{{end}}
</main></body></html>
`))
