// Package pages renders every HTML page gatehouse shows to people: the
// sign-in hand-off's errors, the user page, 403 and 404, other errors, the
// sign-out confirmation and the signed-out page, for all services. One
// template set and one stylesheet, embedded: no external fonts, scripts or
// CDNs, so the pages work offline and under a strict Content-Security-Policy.
//
// Every page carries the product name or logo (Pomerium's branding options
// logo_url, favicon_url, primary_color, secondary_color,
// darkmode_primary_color, darkmode_secondary_color,
// error_message_first_paragraph), who is signed in when known, what
// happened, what to do next, and the request id.
package pages

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config"
)

//go:embed style.css
var styleCSS string

//go:embed page.html
var pageHTML string

var tmpl = template.Must(template.New("pages").Funcs(template.FuncMap{
	"css":        func() template.CSS { return template.CSS(styleCSS) },
	"statusText": http.StatusText,
}).Parse(pageHTML))

// DefaultProductName is the name pages show when no logo is configured.
const DefaultProductName = "gatehouse"

// Branding is what every page shows of the deployment. The zero value is
// gatehouse's own look.
type Branding struct {
	// Name is the product name in the page header and title.
	Name string
	// LogoURL replaces the built-in mark and name in the header
	// (logo_url); FaviconURL is the page icon (favicon_url).
	LogoURL, FaviconURL string
	// Colors is the CSS custom properties for the configured colors,
	// built from validated values only.
	Colors template.CSS
	// ErrorMessage is shown first on every error page
	// (error_message_first_paragraph).
	ErrorMessage string
}

var colorRE = regexp.MustCompile(`^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20})$`)

// ValidColor reports whether s is a color the pages accept for
// primary_color and the like: #rgb, #rrggbb (with optional alpha), or a
// CSS color name.
func ValidColor(s string) bool { return colorRE.MatchString(s) }

// BrandingFor returns the branding configured in cfg (nil: the default).
func BrandingFor(cfg *config.Config) Branding {
	b := Branding{Name: DefaultProductName}
	if cfg == nil {
		return b
	}
	o := &cfg.Options
	b.LogoURL = imageURL(o.LogoURL)
	b.FaviconURL = imageURL(o.FaviconURL)
	b.ErrorMessage = strings.TrimSpace(o.ErrorMessageFirstParagraph)
	var css strings.Builder
	for _, c := range []struct{ prop, value string }{
		{"--primary", o.PrimaryColor}, {"--secondary", o.SecondaryColor},
		{"--dark-primary", o.DarkmodePrimaryColor}, {"--dark-secondary", o.DarkmodeSecondaryColor},
	} {
		if v := strings.TrimSpace(c.value); v != "" && ValidColor(v) {
			css.WriteString(c.prop + ":" + v + ";")
		}
	}
	b.Colors = template.CSS(css.String())
	return b
}

// imageURL returns raw when it is an http(s) or data:image URL, else "".
func imageURL(raw string) string {
	raw = strings.TrimSpace(raw)
	if strings.HasPrefix(raw, "data:image/") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return u.String()
}

// Row is one line of a page's table: a label and its value. Title, when
// set, is shown on hover (the raw value behind a readable one).
type Row struct {
	Label, Value, Title string
	Code                bool   // the value is an identifier: monospace
	Href                string // the label links here (the routes portal)
	Icon                string // a small image before the label (a route's logo_url)
}

// Field is a hidden form field.
type Field struct{ Name, Value string }

// Action is a button: a link (Href) or a form POSTed to Post with Fields.
type Action struct {
	Label   string
	Href    string
	Post    string
	Fields  []Field
	Primary bool
}

// Reason is one policy reason shown with show_error_details.
type Reason struct{ Name, Text string }

// Raw is a value shown whole in a read-only text box (the identity JWT).
type Raw struct{ Title, Hint, Value string }

// Page is what one page shows. Only Title is required.
type Page struct {
	Brand Branding
	// Status is the HTTP status shown above the title (0: none).
	Status int
	Title  string
	// Lead is what happened, one paragraph each.
	Lead []string
	// Email is who is signed in, shown in the header ("" when nobody is
	// or it is not known).
	Email string
	// Facts are the details of what happened (route, request, user).
	Facts []Row
	// Reasons are the policy's reasons (show_error_details).
	Reasons []Reason
	// Next says what to do next.
	Next    string
	Actions []Action
	// Claims are a second table (the user page's claims).
	ClaimsTitle, ClaimsHint string
	Claims                  []Row
	Raw                     *Raw
	RequestID               string
	// Now is the time shown in the footer (zero: time.Now()).
	Now time.Time
}

// Time is the footer's time of the page.
func (p *Page) Time() string {
	t := p.Now
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// HTML renders p.
func (p *Page) HTML() []byte {
	if p.Brand.Name == "" {
		p.Brand.Name = DefaultProductName
	}
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "page", p); err != nil {
		// The template is fixed and its data plain values: this does not
		// happen, but a page must still be answered.
		buf.Reset()
		buf.WriteString("<!DOCTYPE html><title>" + template.HTMLEscapeString(p.Title) + "</title><p>" +
			template.HTMLEscapeString(p.Title) + "</p><p>Request ID " + template.HTMLEscapeString(p.RequestID) + "</p>")
	}
	return buf.Bytes()
}

// ContentSecurityPolicy is the policy every page is served with: nothing
// but the inline stylesheet, images (the logo) and forms back to the same
// site; no scripts, no framing.
const ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: http: data:; " +
	"frame-ancestors 'none'; base-uri 'none'"

// Headers returns the response headers of a page, as name/value pairs
// (lower-case names, for ext_authz answers as well as net/http).
func Headers() [][2]string {
	return [][2]string{
		{"content-type", "text/html; charset=utf-8"},
		{"cache-control", "no-store"},
		{"x-content-type-options", "nosniff"},
		{"x-frame-options", "DENY"},
		{"referrer-policy", "no-referrer"},
		{"content-security-policy", ContentSecurityPolicy},
	}
}

// Write answers r with p and status. A HEAD request gets the headers only.
func Write(w http.ResponseWriter, r *http.Request, status int, p *Page) {
	body := p.HTML()
	h := w.Header()
	for _, kv := range Headers() {
		h.Set(kv[0], kv[1])
	}
	if p.RequestID != "" && h.Get("X-Request-Id") == "" {
		h.Set("X-Request-Id", p.RequestID)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r == nil || r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
