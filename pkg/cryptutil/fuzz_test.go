package cryptutil

import (
	"bytes"
	"net/url"
	"testing"
	"time"
)

var fuzzKey = bytes.Repeat([]byte{7}, SecretSize)

// VerifySignedURL reads attacker-controlled URLs on every hand-off: it must
// never panic, and what it accepts must stop verifying when its host or
// path changes.
func FuzzVerifySignedURL(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	good := SignURL(fuzzKey, &url.URL{Scheme: "https", Host: "authenticate.example.com", Path: "/.pomerium/sign_in",
		RawQuery: "pomerium_redirect_uri=https%3A%2F%2Fapp.example.com%2F"}, now, time.Minute)
	f.Add(good.String())
	f.Add("https://a/?pomerium_signature=&pomerium_issued=1&pomerium_expiry=2")
	f.Add("https://a/?pomerium_signature=AAAA&pomerium_signature=BBBB")
	f.Add("https://a/?pomerium_signature=%ZZ")
	f.Add(good.String() + "&pomerium_issued=0")
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		if VerifySignedURL(fuzzKey, u, now) != nil {
			return
		}
		changed := *u
		changed.Path += "x"
		if err := VerifySignedURL(fuzzKey, &changed, now); err == nil {
			t.Fatalf("accepted %q and also with its path changed", raw)
		}
		changed = *u
		changed.Host += "x"
		if err := VerifySignedURL(fuzzKey, &changed, now); err == nil {
			t.Fatalf("accepted %q and also with its host changed", raw)
		}
	})
}

// Cipher.Open reads sealed values from cookies and URLs: it must never
// panic and must open only what Seal made with the same additional data.
func FuzzCipherOpen(f *testing.F) {
	c, err := NewCipher(fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.Seal([]byte("state"), []byte("ad")), []byte("ad"))
	f.Add("", []byte(nil))
	f.Add("not base64!", []byte("ad"))
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", []byte("ad"))
	f.Fuzz(func(t *testing.T, sealed string, ad []byte) {
		pt, err := c.Open(sealed, ad)
		if err != nil {
			return
		}
		if _, err := c.Open(sealed, append(append([]byte(nil), ad...), 'x')); err == nil {
			t.Fatalf("opened %q with two different additional data (%d bytes of plaintext)", sealed, len(pt))
		}
	})
}
