package authenticate

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/gatehouse/gatehouse/pkg/browser"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/pages"
	"github.com/gatehouse/gatehouse/pkg/requestid"
)

// apiClient reports whether r comes from a program that wants JSON rather
// than an HTML page: the opposite of browser.Request, the rule every
// service shares.
func apiClient(r *http.Request) bool { return !browser.Request(r) }

// requestID returns the request's id (X-Request-Id when a front proxy set
// a valid one, else a new one in the format every service uses), for pages
// and logs.
func requestID(r *http.Request) string { return requestid.From(r.Header) }

// setPageHeaders sets the headers every page and redirect of the service
// carries.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	for _, kv := range pages.Headers() {
		if kv[0] != "content-type" {
			h.Set(kv[0], kv[1])
		}
	}
}

// page writes p with the configured branding and the request's id.
func (s *Service) page(w http.ResponseWriter, r *http.Request, status int, p *pages.Page) {
	p.Brand = pages.BrandingFor(s.state.Load().cfg)
	if p.RequestID == "" {
		p.RequestID = requestID(r)
	}
	pages.Write(w, r, status, p)
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
		w.Header().Set("X-Request-Id", id)
		writeJSON(w, p.Status, map[string]any{
			"error": p.Code, "error_description": p.Message, "status": p.Status, "request_id": id,
		})
		return
	}
	pg := &pages.Page{
		Status:    p.Status,
		Title:     p.Title,
		Lead:      []string{p.Message},
		Next:      p.Hint,
		Facts:     []pages.Row{{Label: "Error", Value: p.Code, Code: true}},
		RequestID: id,
	}
	if pg.Next == "" {
		pg.Next = "If this keeps happening, give the administrator the request ID below."
	}
	if p.Status >= 500 && r.Method == http.MethodGet {
		pg.Actions = []pages.Action{{Label: "Try again", Href: r.URL.RequestURI(), Primary: true}}
	}
	s.page(w, r, p.Status, pg)
}

// signedOutPage is the page a sign-out on the authenticate host ends on.
func (s *Service) signedOutPage(w http.ResponseWriter, r *http.Request) {
	s.page(w, r, http.StatusOK, &pages.Page{
		Title: "You are signed out",
		Lead: []string{"Your session has ended on every application behind this gatehouse, and at the identity provider when it supports that.",
			"To be safe on a shared computer, close the browser when you are done."},
		Actions: []pages.Action{{Label: "Sign in again", Href: handoff.UserPagePath, Primary: true}},
	})
}
