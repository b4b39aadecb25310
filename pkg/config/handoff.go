package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// validateProgrammaticWhitelist checks programmatic_redirect_domain_whitelist.
// Pomerium compares each entry with the redirect URI's host name, exactly,
// so an entry is a bare host name or IP address: a URL, a port, a path or a
// wildcard would never match, and is refused rather than left to fail
// silently at sign-in.
func (c *Config) validateProgrammaticWhitelist(errs *Errors) {
	const key = "programmatic_redirect_domain_whitelist"
	for _, d := range c.ProgrammaticRedirectDomainWhitelist {
		if msg := whitelistEntryProblem(strings.TrimSpace(d)); msg != "" {
			errs.add(key, c.lines[key], fmt.Sprintf("%q: %s", d, msg))
		}
	}
}

func whitelistEntryProblem(d string) string {
	switch {
	case d == "":
		return "empty entry"
	case strings.Contains(d, "://"):
		if u, err := url.Parse(d); err == nil && u.Hostname() != "" {
			return fmt.Sprintf("expected a host name, not a URL: write %q", u.Hostname())
		}
		return "expected a host name, not a URL"
	case strings.Contains(d, "*"):
		return "wildcards are not supported: each entry must be the redirect URI's exact host name"
	case net.ParseIP(d) != nil:
		return ""
	}
	if h, _, err := net.SplitHostPort(d); err == nil {
		return fmt.Sprintf("expected a host name without a port (any port is allowed): write %q", strings.Trim(h, "[]"))
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 {
			return "not a valid host name"
		}
		for i := 0; i < len(l); i++ {
			ch := l[i]
			if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_') {
				return "not a valid host name"
			}
		}
	}
	return ""
}
