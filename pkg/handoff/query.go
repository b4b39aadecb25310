package handoff

import (
	"net/url"
	"strings"
)

// reservedQueryPrefix starts every query parameter gatehouse and Pomerium
// use (pomerium_jwt, pomerium_session_encrypted, pomerium_signature…).
const reservedQueryPrefix = "pomerium_"

// StripReservedQuery returns rawQuery without the parameters whose name
// starts with "pomerium_" (ignoring case, and '-' taken for '_'), so that no
// session handle or hand-off value in a URL reaches an upstream, its
// request line or its logs. gatehouse reserves the prefix as it reserves
// the X-Pomerium- header prefix: whatever a client sends under it is
// removed, whoever put it there.
//
// Names are compared decoded (pomerium%5Fjwt is pomerium_jwt), and both '&'
// and ';' count as separators, since some upstream frameworks split on ';'
// too. The other parameters keep their order and exact encoding, so the
// upstream sees the query as the client sent it, less those. removed
// reports whether anything was taken out. It does not allocate when the query cannot
// hold such a name.
func StripReservedQuery(rawQuery string) (out string, removed bool) {
	if rawQuery == "" || !mayHoldReserved(rawQuery) {
		return rawQuery, false
	}
	var b strings.Builder
	rest := rawQuery
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		if isReservedPart(part) {
			removed = true
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	if !removed {
		return rawQuery, false
	}
	return b.String(), true
}

// mayHoldReserved is a cheap test that a query may name a reserved
// parameter: it spells "pomerium" in any case, or escapes something.
func mayHoldReserved(q string) bool {
	return strings.IndexByte(q, '%') >= 0 || containsFold(q, "pomerium")
}

// isReservedPart reports whether one '&'-separated piece names a reserved
// parameter in any of its ';'-separated sub-pieces.
func isReservedPart(part string) bool {
	for sub := range strings.SplitSeq(part, ";") {
		name, _, _ := strings.Cut(sub, "=")
		if dec, err := url.QueryUnescape(name); err == nil {
			name = dec
		}
		name = strings.TrimSpace(name)
		if len(name) >= len(reservedQueryPrefix) && equalFoldUnderscore(name[:len(reservedQueryPrefix)], reservedQueryPrefix) {
			return true
		}
	}
	return false
}

// equalFoldUnderscore compares ASCII case-insensitively, '-' matching '_'.
func equalFoldUnderscore(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := lowerDash(a[i]), lowerDash(b[i])
		if x != y {
			return false
		}
	}
	return true
}

func lowerDash(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	if c == '-' {
		return '_'
	}
	return c
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFoldUnderscore(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
