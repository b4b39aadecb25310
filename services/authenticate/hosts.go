package authenticate

import (
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// ErrRedirectNotAllowed means a return URL is not on a host this deployment
// serves; following it would make gatehouse an open redirect.
var ErrRedirectNotAllowed = errors.New("the return URL is not on a host this gatehouse serves")

// hostPattern is one allowed host: a host name, possibly with "*" wildcards
// (a "*" matches any run of characters within one DNS label, as in route
// "from" URLs), and a port when the pattern names one.
type hostPattern struct {
	labels []string // lower-case labels of the host name
	port   string   // "" for any port
}

// hostMatcher is a list of allowed hosts.
type hostMatcher []hostPattern

func parseHostPattern(hostport, scheme string) (hostPattern, bool) {
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return hostPattern{}, false
	}
	if port != "" && port == defaultPort(scheme) {
		port = "" // an explicit default port allows the bare host too
	}
	return hostPattern{labels: strings.Split(host, "."), port: port}, true
}

func defaultPort(scheme string) string {
	switch scheme {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// routeHosts returns the hosts of the configured routes and of the
// authenticate service itself.
func routeHosts(cfg *config.Config) hostMatcher {
	var m hostMatcher
	add := func(u *url.URL) {
		if u == nil {
			return
		}
		if p, ok := parseHostPattern(u.Host, u.Scheme); ok {
			m = append(m, p)
		}
	}
	add(cfg.AuthenticateURLParsed)
	for i := range cfg.Routes {
		add(cfg.Routes[i].FromURL)
	}
	return m
}

// programmaticHosts returns programmatic_redirect_domain_whitelist, which
// defaults to localhost as in Pomerium (command-line clients listen there).
func programmaticHosts(cfg *config.Config) hostMatcher {
	list := []string(cfg.ProgrammaticRedirectDomainWhitelist)
	if len(list) == 0 {
		list = []string{"localhost"}
	}
	var m hostMatcher
	for _, d := range list {
		d = strings.TrimSpace(d)
		if u, err := url.Parse(d); err == nil && u.Host != "" {
			d = u.Host // a URL was given; its host is meant
		}
		if p, ok := parseHostPattern(d, ""); ok {
			m = append(m, p)
		}
	}
	return m
}

// match reports whether u's host is allowed.
func (m hostMatcher) match(u *url.URL) bool {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return false
	}
	port := u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	labels := strings.Split(host, ".")
	for _, p := range m {
		if p.port != "" && p.port != port {
			continue
		}
		if p.matchLabels(labels) {
			return true
		}
	}
	return false
}

func (p hostPattern) matchLabels(labels []string) bool {
	if len(labels) != len(p.labels) {
		return false
	}
	for i, pl := range p.labels {
		if !matchLabel(pl, labels[i]) {
			return false
		}
	}
	return true
}

// matchLabel matches one DNS label against a pattern label where "*"
// stands for any run of characters.
func matchLabel(pattern, label string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == label
	}
	if label == "" {
		return false
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(label, parts[0]) {
		return false
	}
	rest := label[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, mid)
		if i < 0 {
			return false
		}
		rest = rest[i+len(mid):]
	}
	return strings.HasSuffix(rest, last) && len(rest) >= len(last)
}

// checkRedirect parses a return URL and checks it against the allowed
// hosts: route hosts (and authenticate's own) for a browser sign-in, and
// those or programmatic_redirect_domain_whitelist for a programmatic one.
func (st *state) checkRedirect(raw string, programmatic bool) (*url.URL, error) {
	if raw == "" || len(raw) > 8192 {
		return nil, ErrRedirectNotAllowed
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, ErrRedirectNotAllowed
	}
	if st.routes.match(u) || (programmatic && st.programmatic.match(u)) {
		return u, nil
	}
	return nil, ErrRedirectNotAllowed
}
