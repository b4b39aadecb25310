package authorize

import (
	"strings"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// hostPattern matches a request host against a route's `from` host: an
// exact name or one with `*` wildcards (each matching any run of
// characters), compared without regard to case. When `from` names a port,
// the request must carry that port (or none, when it is the scheme's
// default); otherwise the request's port is ignored.
type hostPattern struct {
	name     string // lower-case host name, possibly with '*'
	wildcard bool
	port     string // "" when from has no explicit port
	defPort  bool   // port is the scheme's default
}

func newHostPattern(u *urlLike) hostPattern {
	p := hostPattern{name: strings.ToLower(u.hostname), port: u.port}
	p.wildcard = strings.Contains(p.name, "*")
	p.defPort = (u.scheme == "https" && u.port == "443") || (u.scheme == "http" && u.port == "80")
	return p
}

// urlLike is the part of a route's from URL the matcher needs.
type urlLike struct{ scheme, hostname, port string }

// match reports whether hostname (lower-case, without port) and port match.
func (p *hostPattern) match(hostname, port string) bool {
	if p.port != "" && port != p.port && !(port == "" && p.defPort) {
		return false
	}
	if !p.wildcard {
		return hostname == p.name
	}
	return globMatch(p.name, hostname)
}

// globMatch reports whether s matches pattern, where '*' matches any run
// of characters (possibly empty). It does not allocate.
func globMatch(pattern, s string) bool {
	// Iterative matching with backtracking to the last star.
	px, sx := 0, 0
	starPx, starSx := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && pattern[px] == '*':
			starPx, starSx = px, sx
			px++
		case px < len(pattern) && pattern[px] == s[sx]:
			px++
			sx++
		case starPx >= 0:
			starSx++
			px, sx = starPx+1, starSx
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// splitHost splits a request host ("a.example.com:8443", "[::1]:80") into
// its lower-case name and port. It allocates only for a host that has
// upper-case letters.
func splitHost(host string) (name, port string) {
	switch {
	case strings.HasPrefix(host, "["):
		i := strings.IndexByte(host, ']')
		if i < 0 {
			return strings.ToLower(host), ""
		}
		name = host[1:i]
		if rest := host[i+1:]; strings.HasPrefix(rest, ":") {
			port = rest[1:]
		}
	default:
		name = host
		if i := strings.IndexByte(host, ':'); i >= 0 && strings.LastIndexByte(host, ':') == i {
			name, port = host[:i], host[i+1:]
		}
	}
	return strings.ToLower(name), port
}

// matchPath reports whether path (without query) matches the route's
// prefix, path or regex (any path when none is set).
func matchPath(r *config.Route, path string) bool {
	switch {
	case r.Prefix != "":
		return strings.HasPrefix(path, r.Prefix)
	case r.Path != "":
		return path == r.Path
	case r.RegexRE != nil:
		return r.RegexRE.MatchString(path)
	}
	return true
}
