// Package routematch finds the configured route for a request: the first
// route, in config order, whose `from` matches the request's host and whose
// `prefix`, `path` or `regex` matches its path. The proxy and authorize
// services share it so that both pick the same route for a request.
package routematch

import (
	"strings"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// Table is a compiled, read-only set of routes. It is safe for concurrent
// use; a configuration reload builds a new Table.
type Table struct {
	routes []entry
	// exact indexes the routes whose from host has no wildcard by lower-case
	// host name (without port); the slices hold indexes into routes in
	// ascending (config) order.
	exact map[string][]int
	// wildSuffix indexes the routes whose from host has a wildcard by the
	// dot-led tail of the host after its last '*' (".example.com" for
	// *.example.com, ".svc.test" for api-*.svc.test): a host can only
	// match such a route when it ends with that tail, so a match looks up
	// the host's few dot-led suffixes instead of scanning every wildcard
	// route (issue 21: matching stays flat with 10,000 routes). The slices
	// hold indexes into routes in config order.
	wildSuffix map[string][]int
	// wild holds the indexes, in config order, of the wildcard routes
	// whose tail after the last '*' has no dot (*, *-internal): scanned
	// for every host.
	wild []int
	byID map[string]*config.Route
}

type entry struct {
	route *config.Route
	host  string // lower-case host name of from, without port
	port  string // from's explicit port, "" when port-agnostic
	// defaultPort is the scheme's port, which a request without a port
	// is taken to use when matching a from with an explicit port.
	defaultPort string
	glob        []string // host split around '*' when the host has wildcards
}

// New compiles routes. It keeps pointers into routes, which must not be
// modified afterwards (a config.Config never is). Routes without a parsed
// FromURL (invalid configuration) never match.
func New(routes []config.Route) *Table {
	t := &Table{exact: map[string][]int{}, wildSuffix: map[string][]int{}, byID: make(map[string]*config.Route, len(routes))}
	for i := range routes {
		r := &routes[i]
		if r.ID != "" {
			if _, dup := t.byID[r.ID]; !dup {
				t.byID[r.ID] = r
			}
		}
		if r.FromURL == nil {
			continue
		}
		e := entry{route: r, host: strings.ToLower(r.FromURL.Hostname()), port: r.FromURL.Port()}
		switch r.FromURL.Scheme {
		case "https":
			e.defaultPort = "443"
		case "http":
			e.defaultPort = "80"
		}
		idx := len(t.routes)
		if strings.Contains(e.host, "*") {
			e.glob = strings.Split(e.host, "*")
			last := e.glob[len(e.glob)-1]
			if j := strings.IndexByte(last, '.'); j >= 0 {
				t.wildSuffix[last[j:]] = append(t.wildSuffix[last[j:]], idx)
			} else {
				t.wild = append(t.wild, idx)
			}
		} else {
			t.exact[e.host] = append(t.exact[e.host], idx)
		}
		t.routes = append(t.routes, e)
	}
	return t
}

// Len returns the number of routes that can match.
func (t *Table) Len() int { return len(t.routes) }

// Match returns the first route, in config order, that matches host (as
// received in the Host header, possibly with a port) and path (the request
// path, without query), or nil when none does. It does not allocate unless
// host has upper-case letters.
func (t *Table) Match(host, path string) *config.Route {
	return t.match(host, path, true)
}

// MatchHost returns the first route, in config order, whose from matches
// host, whatever its path matcher; nil when no route serves the host. The
// proxy uses it for the pages every route host serves (/.pomerium/...).
func (t *Table) MatchHost(host string) *config.Route {
	return t.match(host, "", false)
}

// ByID returns the route with the given id, or nil.
func (t *Table) ByID(id string) *config.Route {
	if t == nil {
		return nil
	}
	return t.byID[id]
}

func (t *Table) match(host, path string, checkPath bool) *config.Route {
	if t == nil || len(t.routes) == 0 {
		return nil
	}
	name, port := splitHostPort(host)
	name = lower(name)
	// The first match in config order is the smallest index that matches
	// in any candidate list: each list is ascending, so each is scanned
	// only up to the best index found so far. Nothing here allocates.
	best := len(t.routes)
	best = t.firstIn(t.exact[name], best, name, port, path, checkPath, false)
	best = t.firstIn(t.wild, best, name, port, path, checkPath, true)
	if len(t.wildSuffix) > 0 {
		for i := 0; i < len(name); i++ {
			if name[i] == '.' {
				if list, ok := t.wildSuffix[name[i:]]; ok {
					best = t.firstIn(list, best, name, port, path, checkPath, true)
				}
			}
		}
	}
	if best == len(t.routes) {
		return nil
	}
	return t.routes[best].route
}

// firstIn returns the first index in list, below best, whose route matches
// name, port and path; best when none does.
func (t *Table) firstIn(list []int, best int, name, port, path string, checkPath, wild bool) int {
	for _, i := range list {
		if i >= best {
			return best
		}
		e := &t.routes[i]
		if wild && !globMatch(e.glob, name) {
			continue
		}
		if e.port != "" {
			p := port
			if p == "" {
				p = e.defaultPort
			}
			if p != e.port {
				continue
			}
		}
		if !checkPath || pathMatches(e.route, path) {
			return i
		}
	}
	return best
}

// pathMatches applies the route's prefix, path or regex matcher.
func pathMatches(r *config.Route, path string) bool {
	switch {
	case r.Prefix != "":
		return strings.HasPrefix(path, r.Prefix)
	case r.Path != "":
		return path == r.Path
	case r.RegexRE != nil:
		return r.RegexRE.MatchString(path) // anchored at config load
	}
	return true
}

// globMatch reports whether name matches the pattern split around '*';
// each '*' matches one or more characters (so *.example.com does not
// match example.com itself, as in Envoy).
func globMatch(parts []string, name string) bool {
	if len(parts) == 1 {
		return parts[0] == name
	}
	first, last := parts[0], parts[len(parts)-1]
	if !strings.HasPrefix(name, first) {
		return false
	}
	name = name[len(first):]
	if len(name) < len(last) || !strings.HasSuffix(name, last) {
		return false
	}
	name = name[:len(name)-len(last)]
	middle := parts[1 : len(parts)-1]
	for _, m := range middle {
		// At least one character for the '*' before m.
		if len(name) < 1 {
			return false
		}
		j := strings.Index(name[1:], m)
		if j < 0 {
			return false
		}
		name = name[1+j+len(m):]
	}
	return len(name) >= 1 // the last '*'
}

// splitHostPort splits "host:port", "[v6]:port", "[v6]" or "host" without
// allocating.
func splitHostPort(hostport string) (host, port string) {
	if strings.HasPrefix(hostport, "[") {
		if end := strings.IndexByte(hostport, ']'); end > 0 {
			host = hostport[1:end]
			if rest := hostport[end+1:]; strings.HasPrefix(rest, ":") {
				port = rest[1:]
			}
			return host, port
		}
		return hostport, ""
	}
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && strings.IndexByte(hostport[:i], ':') < 0 {
		return hostport[:i], hostport[i+1:]
	}
	return hostport, ""
}

// lower returns s in lower case, allocating only when s has upper-case
// ASCII letters (host names on the wire nearly never do).
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// Hostname returns the host of a Host header value without its port.
func Hostname(hostport string) string {
	h, _ := splitHostPort(hostport)
	return h
}
