package pages

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config"
)

func TestPageShowsWhatEveryPageCarries(t *testing.T) {
	p := &Page{
		Status:    403,
		Title:     "Access denied",
		Email:     "alice@example.com",
		Lead:      []string{"You <b>may</b> not."},
		Facts:     []Row{{Label: "Route", Value: "grafana"}},
		Reasons:   Reasons([]string{"email-unauthorized", "groups-unauthorized"}, false),
		Next:      "Ask the administrator.",
		Actions:   []Action{{Label: "Sign out", Post: "/.pomerium/sign_out", Fields: []Field{{"csrf_token", "t\"k"}}}, {Label: "Home", Href: "/"}},
		RequestID: "rid-1",
	}
	body := string(p.HTML())
	for _, want := range []string{
		"403 Forbidden", "Access denied", "Signed in as <b>alice@example.com</b>", "You &lt;b&gt;may&lt;/b&gt; not.",
		"grafana", "email-unauthorized", "Ask the administrator.", `<form method="post" action="/.pomerium/sign_out">`,
		`value="t&#34;k"`, `href="/"`, "Request ID: <code>rid-1</code>", `name="viewport"`, ">gatehouse<",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	for _, bad := range []string{"<script", "http://fonts", "https://fonts", "cdn"} {
		if strings.Contains(body, bad) {
			t.Errorf("page has %q", bad)
		}
	}
}

func TestBranding(t *testing.T) {
	cfg := &config.Config{}
	cfg.LogoURL = "https://example.com/logo.svg"
	cfg.PrimaryColor = "#123abc"
	cfg.SecondaryColor = "red;}body{display:none" // not a color: ignored
	cfg.ErrorMessageFirstParagraph = "Call the help desk at 555."
	b := BrandingFor(cfg)
	body := string((&Page{Brand: b, Status: 404, Title: "Nothing here"}).HTML())
	if !strings.Contains(body, `<img class="logo" src="https://example.com/logo.svg"`) || !strings.Contains(body, "--primary:#123abc;") ||
		strings.Contains(body, "display:none") || !strings.Contains(body, "Call the help desk at 555.") {
		t.Errorf("branding not applied as configured:\n%s", body)
	}
	if BrandingFor(&config.Config{Options: config.Options{LogoURL: "javascript:alert(1)"}}).LogoURL != "" {
		t.Error("a javascript: logo URL was accepted")
	}
	// The error paragraph is for error pages only.
	if body := string((&Page{Brand: b, Title: "You are signed out"}).HTML()); strings.Contains(body, "help desk") {
		t.Error("error_message_first_paragraph on a page that is no error")
	}
}

func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, httptest.NewRequest(http.MethodHead, "/", nil), 404, &Page{Title: "x", RequestID: "r"})
	if w.Code != 404 || w.Body.Len() != 0 || w.Header().Get("Content-Security-Policy") != ContentSecurityPolicy ||
		w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("X-Request-Id") != "r" {
		t.Errorf("HEAD: %d %q %v", w.Code, w.Body.String(), w.Header())
	}
}

func TestClaimRows(t *testing.T) {
	rows := ClaimRows(map[string]any{"exp": float64(1700000000), "email": "a@b.c", "groups": []any{"x", "y"}, "n": 3.0})
	want := []Row{
		{Label: "email", Value: "a@b.c"},
		{Label: "exp", Value: time.Unix(1700000000, 0).UTC().Format(TimeFormat), Title: "1700000000"},
		{Label: "groups", Value: "x, y", Title: `["x","y"]`},
		{Label: "n", Value: "3", Code: true},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %v", rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
}
