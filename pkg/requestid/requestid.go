// Package requestid makes and checks request ids: one format for every
// service, so that a user's "Request ID" on any page finds the log lines of
// every service that handled the request.
package requestid

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
)

// Header is the header that carries a request id between a front proxy,
// gatehouse's services and upstreams.
const Header = "X-Request-Id"

// New returns a fresh request id: 32 lower-case hex digits. Unique, not
// secret: math/rand/v2's per-thread generator is enough and costs a
// fraction of crypto/rand. Safe for concurrent use.
func New() string {
	var raw [16]byte
	var out [32]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	hex.Encode(out[:], raw[:])
	return string(out[:])
}

// Valid accepts up to 128 characters of [A-Za-z0-9._:-], enough for UUIDs
// and tracing ids, and nothing that could forge a log line or a page.
func Valid(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// From returns the request's X-Request-Id when it carries one valid id,
// else a new one.
func From(h http.Header) string {
	if vs := h[Header]; len(vs) == 1 && Valid(vs[0]) {
		return vs[0]
	}
	return New()
}
