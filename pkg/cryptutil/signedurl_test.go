package cryptutil

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

// testNow is the fixed signing time of the vectors: 2026-01-02T03:04:05Z,
// Unix 1767323045.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	unsignedURL = "https://authenticate.example.com/.pomerium/sign_in?pomerium_redirect_uri=https%3A%2F%2Fgrafana.example.com%2Fd%2Fabc"
	// signedURLVector is unsignedURL signed with testSecret at testNow for
	// DefaultSignedURLTTL.
	signedURLVector = "https://authenticate.example.com/.pomerium/sign_in?pomerium_expiry=1767323345&pomerium_issued=1767323045&pomerium_redirect_uri=https%3A%2F%2Fgrafana.example.com%2Fd%2Fabc&pomerium_signature=noiUhooVEniwzorGFkY7NY5Yjbapv7tYJ4ajgiH9cqI%3D"
)

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSignURLVector(t *testing.T) {
	t.Parallel()
	u := mustParse(t, unsignedURL)
	got := SignURL(testSecret, u, testNow, DefaultSignedURLTTL)
	if got.String() != signedURLVector {
		t.Fatalf("SignURL =\n%s\nwant\n%s", got, signedURLVector)
	}
	if u.String() != unsignedURL {
		t.Fatalf("SignURL modified its input: %s", u)
	}
	q := got.Query()
	if q.Get(QueryIssued) != "1767323045" || q.Get(QueryExpiry) != "1767323345" {
		t.Fatalf("issued/expiry = %s/%s", q.Get(QueryIssued), q.Get(QueryExpiry))
	}
	// Re-signing a signed URL replaces the signature parameters.
	again := SignURL(testSecret, got, testNow, DefaultSignedURLTTL)
	if again.String() != signedURLVector {
		t.Fatalf("re-signing gave %s", again)
	}
}

func TestVerifySignedURL(t *testing.T) {
	t.Parallel()
	withQuery := func(edit func(url.Values)) string {
		u := mustParse(t, signedURLVector)
		q := u.Query()
		edit(q)
		u.RawQuery = q.Encode()
		return u.String()
	}
	tests := []struct {
		name string
		url  string
		key  []byte
		now  time.Time
		want error
	}{
		{"valid at issue", signedURLVector, testSecret, testNow, nil},
		{"valid just before expiry", signedURLVector, testSecret, testNow.Add(5*time.Minute - time.Second), nil},
		{"valid within skew after expiry", signedURLVector, testSecret, testNow.Add(5*time.Minute + SignedURLClockSkew - time.Second), nil},
		{"expired", signedURLVector, testSecret, testNow.Add(5*time.Minute + SignedURLClockSkew), ErrURLExpired},
		{"valid issued within skew in the future", signedURLVector, testSecret, testNow.Add(-SignedURLClockSkew), nil},
		{"issued in the future", signedURLVector, testSecret, testNow.Add(-SignedURLClockSkew - time.Second), ErrURLNotYetValid},
		{"query order does not matter", withQuery(func(url.Values) {}), testSecret, testNow, nil},
		{"wrong key", signedURLVector, []byte("another key of any length"), testNow, ErrURLSignature},
		{"unsigned", unsignedURL, testSecret, testNow, ErrURLSignature},
		{"other host", "https://evil.example.com" + signedURLVector[len("https://authenticate.example.com"):], testSecret, testNow, ErrURLSignature},
		{"other scheme", "http" + signedURLVector[len("https"):], testSecret, testNow, ErrURLSignature},
		{"redirect changed", withQuery(func(q url.Values) { q.Set("pomerium_redirect_uri", "https://evil.example.com/") }), testSecret, testNow, ErrURLSignature},
		{"parameter added", withQuery(func(q url.Values) { q.Set("x", "1") }), testSecret, testNow, ErrURLSignature},
		{"expiry extended", withQuery(func(q url.Values) { q.Set(QueryExpiry, "1767333345") }), testSecret, testNow, ErrURLSignature},
		{"signature repeated", withQuery(func(q url.Values) { q.Add(QuerySignature, q.Get(QuerySignature)) }), testSecret, testNow, ErrURLSignature},
		{"signature not base64", withQuery(func(q url.Values) { q.Set(QuerySignature, "***") }), testSecret, testNow, ErrURLSignature},
		{"signature truncated", withQuery(func(q url.Values) { q.Set(QuerySignature, q.Get(QuerySignature)[:20]) }), testSecret, testNow, ErrURLSignature},
		{"signature empty", withQuery(func(q url.Values) { q.Set(QuerySignature, "") }), testSecret, testNow, ErrURLSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := VerifySignedURL(tt.key, mustParse(t, tt.url), tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("VerifySignedURL = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifySignedURLUnpaddedSignature(t *testing.T) {
	t.Parallel()
	u := mustParse(t, signedURLVector)
	q := u.Query()
	sig := q.Get(QuerySignature)
	if sig[len(sig)-1] != '=' {
		t.Fatalf("signature %q is not padded", sig)
	}
	q.Set(QuerySignature, sig[:len(sig)-1])
	u.RawQuery = q.Encode()
	if err := VerifySignedURL(testSecret, u, testNow); err != nil {
		t.Fatalf("unpadded signature: %v", err)
	}
}

func BenchmarkSignURL(b *testing.B) {
	u := mustParse(b, unsignedURL)
	b.ReportAllocs()
	for b.Loop() {
		SignURL(testSecret, u, testNow, DefaultSignedURLTTL)
	}
}

func BenchmarkVerifySignedURL(b *testing.B) {
	u := mustParse(b, signedURLVector)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifySignedURL(testSecret, u, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
