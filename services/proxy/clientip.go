package proxy

import (
	"net/http"
	"net/netip"
	"strings"
)

// remoteIP returns the IP of the TCP peer, without allocating.
func remoteIP(r *http.Request) string {
	a := r.RemoteAddr
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		a = a[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
}

// clientIP returns the client's IP address as Envoy decides it with
// xff_num_trusted_hops: with 0 hops the TCP peer; with n hops the n-th
// address from the right of X-Forwarded-For (the last n entries were
// appended by proxies we trust). When the header has fewer entries, or
// the chosen one is not an IP, the TCP peer is used. trusted is the part
// of X-Forwarded-For from the client IP rightwards, to pass on upstream.
func clientIP(r *http.Request, hops int) (ip, trusted string) {
	peer := remoteIP(r)
	if hops <= 0 {
		return peer, ""
	}
	xff := r.Header["X-Forwarded-For"]
	if len(xff) == 0 {
		return peer, ""
	}
	// The entries of several headers are one list, in order.
	var joined string
	if len(xff) == 1 {
		joined = xff[0]
	} else {
		joined = strings.Join(xff, ",")
	}
	// Walk from the right, hops entries.
	end := len(joined)
	for n := 1; ; n++ {
		start := strings.LastIndexByte(joined[:end], ',')
		entry := strings.TrimSpace(joined[start+1 : end])
		if n == hops {
			if _, err := netip.ParseAddr(entry); err != nil {
				return peer, ""
			}
			return entry, strings.TrimSpace(joined[start+1:])
		}
		if start < 0 {
			return peer, ""
		}
		end = start
	}
}

// forwardedFor is the X-Forwarded-For value sent upstream: the trusted
// part of the incoming header followed by the TCP peer. Untrusted entries
// (which a client can forge) are dropped.
func forwardedFor(r *http.Request, hops int) string {
	peer := remoteIP(r)
	if hops <= 0 {
		return peer
	}
	_, trusted := clientIP(r, hops)
	if trusted == "" {
		return peer
	}
	return trusted + ", " + peer
}

// requestScheme is "https" for a request that came over TLS; behind
// trusted proxies (xff_num_trusted_hops > 0) their X-Forwarded-Proto is
// believed.
func requestScheme(r *http.Request, hops int) string {
	if r.TLS != nil {
		return "https"
	}
	if hops > 0 {
		if vs := r.Header["X-Forwarded-Proto"]; len(vs) > 0 {
			p := vs[len(vs)-1]
			if i := strings.LastIndexByte(p, ','); i >= 0 {
				p = p[i+1:]
			}
			switch strings.TrimSpace(p) {
			case "https":
				return "https"
			case "http":
				return "http"
			}
		}
	}
	return "http"
}
