package authenticate

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/handoff"
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
// hosts: route hosts (and authenticate's own) for a browser sign-in. A
// programmatic sign-in hands the session handle to its return URL as
// pomerium_jwt, so its URL must be on programmatic_redirect_domain_whitelist
// instead, checked by the same function the proxy uses (never a route host:
// its upstream would get the handle in its request line and logs).
func (st *state) checkRedirect(raw string, programmatic bool) (*url.URL, error) {
	if programmatic {
		u, err := handoff.ProgrammaticRedirect(raw, st.cfg.ProgrammaticRedirectDomainWhitelist)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRedirectNotAllowed, err)
		}
		return u, nil
	}
	if raw == "" || len(raw) > 8192 {
		return nil, ErrRedirectNotAllowed
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, ErrRedirectNotAllowed
	}
	if st.routes.match(u) {
		return u, nil
	}
	return nil, ErrRedirectNotAllowed
}
