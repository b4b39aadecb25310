package authorize

import "strings"

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
