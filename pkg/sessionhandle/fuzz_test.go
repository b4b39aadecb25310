package sessionhandle

import (
	"errors"
	"strings"
	"testing"
)

// FuzzDecode checks that Decode never panics and only returns its
// documented errors, for arbitrary tokens and, so that mutations reach the
// claims parser past the signature check, for arbitrary payloads signed with
// the key. The seed corpus runs in plain `go test`.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		handleVector,
		"",
		"..",
		"a.b.c",
		"a.b.c.d",
		strings.Repeat(".", 10),
		handleVector + "=",
		sign(testKey, `{"alg":"none"}`, `{"jti":"s"}`),
		sign(testKey, `{"alg":"HS256","crit":["x"]}`, `{"jti":"s"}`),
		`{"jti":"s","sub":"u","aud":["a","b"],"iat":1.5,"exp":1767323105,"nbf":null}`,
		`{"jti":"s\u0000\"","aud":"\/x","exp":-1}`,
		`{"jti":"s","exp":1e400}`,
		`{"jti":"s","databroker_server_version":18446744073709551615}`,
		`{"jti":"s","databroker_record_version":18446744073709551616}`,
		`{"jti":"s","aud":[1]}`,
		`[]`,
		`null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range []string{s, sign(testKey, `{"alg":"HS256","typ":"JWT"}`, s)} {
			h, err := Decode(testKey, tok, testNow)
			switch {
			case err == nil:
				if h == nil || h.ID == "" {
					t.Fatalf("Decode(%q) = %+v without error", tok, h)
				}
			case errors.Is(err, ErrInvalid), errors.Is(err, ErrExpired):
				if h != nil {
					t.Fatalf("Decode(%q) returned a handle with error %v", tok, err)
				}
			default:
				t.Fatalf("Decode(%q): undocumented error %v", tok, err)
			}
		}
	})
}
