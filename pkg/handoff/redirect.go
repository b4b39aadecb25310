package handoff

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// DefaultProgrammaticRedirectDomains is what
// programmatic_redirect_domain_whitelist holds when it is not set, as in
// Pomerium: command-line clients listen on the loopback interface.
var DefaultProgrammaticRedirectDomains = []string{"localhost"}

// maxRedirectLen bounds a redirect URI; longer ones are refused rather
// than carried through signed URLs and cookies.
const maxRedirectLen = 8192

// ErrRedirectNotAllowed means a programmatic login's redirect URI is not on
// programmatic_redirect_domain_whitelist: the session handle would be handed
// to a server the operator did not allow.
var ErrRedirectNotAllowed = errors.New("handoff: the redirect URI is not on programmatic_redirect_domain_whitelist")

// ProgrammaticRedirect parses the pomerium_redirect_uri of a programmatic
// login and checks it with AllowedProgrammaticRedirect. The proxy (which
// hands out the sign-in URL) and authenticate (which hands the session
// handle to the URI as pomerium_jwt) both call it, so they can never
// disagree about where a handle may go.
func ProgrammaticRedirect(raw string, whitelist []string) (*url.URL, error) {
	if raw == "" || len(raw) > maxRedirectLen {
		return nil, ErrRedirectNotAllowed
	}
	u, err := url.Parse(raw)
	if err != nil || !AllowedProgrammaticRedirect(u, whitelist) {
		return nil, ErrRedirectNotAllowed
	}
	return u, nil
}

// AllowedProgrammaticRedirect reports whether a programmatic login may send
// the session handle to u. The rules are Pomerium's (internal/urlutil
// IsRedirectAllowed): the scheme is http or https; the host name equals one
// entry of whitelist exactly (no subdomains, no wildcards), the port being
// ignored because a CLI listens on a random one; the entry "localhost" also
// stands for every loopback address (127.0.0.0/8, ::1). An empty whitelist
// means DefaultProgrammaticRedirectDomains.
//
// Stricter than Pomerium, as oauth2-proxy is with its redirect checks: the
// comparison ignores case only (host names are case-insensitive), and a URL
// with user information (http://localhost@evil/ reads as either host to
// different parsers), without a host, or opaque is refused. A route host is
// never allowed merely for being a route: its upstream would receive the
// handle in its request line and logs.
func AllowedProgrammaticRedirect(u *url.URL, whitelist []string) bool {
	if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.User != nil || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return false
	}
	if len(whitelist) == 0 {
		whitelist = DefaultProgrammaticRedirectDomains
	}
	for _, d := range whitelist {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" {
			continue
		}
		if host == d || (d == "localhost" && isLoopback(host)) {
			return true
		}
	}
	return false
}

// isLoopback reports whether a host name is localhost or a loopback IP
// literal. Names are not resolved: "localhost" is the only loopback name.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
