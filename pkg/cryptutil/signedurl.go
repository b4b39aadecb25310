package cryptutil

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Query parameters of a signed URL. The names are Pomerium's.
const (
	// QueryIssued carries the issue time, in Unix seconds.
	QueryIssued = "pomerium_issued"
	// QueryExpiry carries the expiry time, in Unix seconds.
	QueryExpiry = "pomerium_expiry"
	// QuerySignature carries the base64url HMAC-SHA256 signature.
	QuerySignature = "pomerium_signature"
)

// DefaultSignedURLTTL is the lifetime of a redirect URL between services.
const DefaultSignedURLTTL = 5 * time.Minute

// SignedURLClockSkew is how far the clocks of the signing and the verifying
// service may disagree. VerifySignedURL accepts a URL issued up to this much
// in the future and keeps accepting it this long past its expiry.
const SignedURLClockSkew = time.Minute

// Errors returned by VerifySignedURL; callers branch on them with errors.Is.
var (
	// ErrURLSignature means the URL is unsigned, its signature parameters
	// are malformed, or the signature does not match (wrong key or
	// modified URL).
	ErrURLSignature = errors.New("cryptutil: invalid URL signature")
	// ErrURLExpired means the signature is valid but the URL expired.
	ErrURLExpired = errors.New("cryptutil: signed URL has expired")
	// ErrURLNotYetValid means the signature is valid but the URL was issued
	// further in the future than SignedURLClockSkew allows.
	ErrURLNotYetValid = errors.New("cryptutil: signed URL is issued in the future")
)

// SignURL returns a copy of u with QueryIssued = now, QueryExpiry = now+ttl
// (both in Unix seconds) and QuerySignature set; u is not modified. Any
// previous signature parameters in u are replaced.
//
// The signature is HMAC-SHA256 under key over the URL's string form with its
// query canonicalised by url.Values.Encode (sorted by key) and without
// QuerySignature, so it covers scheme, host, path, every other parameter and
// both times. It is encoded as padded base64url, as Pomerium does.
func SignURL(key []byte, u *url.URL, now time.Time, ttl time.Duration) *url.URL {
	out := *u // url.Userinfo is immutable, so sharing u.User is safe
	q := out.Query()
	q.Del(QuerySignature)
	q.Set(QueryIssued, strconv.FormatInt(now.Unix(), 10))
	q.Set(QueryExpiry, strconv.FormatInt(now.Add(ttl).Unix(), 10))
	out.RawQuery = q.Encode()
	mac := urlMAC(key, &out)
	q.Set(QuerySignature, base64.URLEncoding.EncodeToString(mac))
	out.RawQuery = q.Encode()
	return &out
}

// VerifySignedURL checks a URL produced by SignURL: the signature first
// (ErrURLSignature, compared in constant time), then the times against now
// with SignedURLClockSkew of tolerance (ErrURLExpired, ErrURLNotYetValid).
// Returned errors wrap exactly one of the three sentinels. u is not
// modified.
//
// u must be the absolute URL as it was signed: a server verifying its own
// incoming request rebuilds scheme and host, which r.URL lacks.
func VerifySignedURL(key []byte, u *url.URL, now time.Time) error {
	q := u.Query()
	sigs := q[QuerySignature]
	if len(sigs) != 1 || sigs[0] == "" {
		return fmt.Errorf("%w: missing or repeated %s", ErrURLSignature, QuerySignature)
	}
	sig, err := decodeURLSignature(sigs[0])
	if err != nil {
		return fmt.Errorf("%w: malformed %s", ErrURLSignature, QuerySignature)
	}
	q.Del(QuerySignature)
	c := *u
	c.RawQuery = q.Encode()
	if !hmac.Equal(sig, urlMAC(key, &c)) {
		return ErrURLSignature
	}

	issued, err := parseUnixParam(q, QueryIssued)
	if err != nil {
		return err
	}
	expiry, err := parseUnixParam(q, QueryExpiry)
	if err != nil {
		return err
	}
	if !now.Before(expiry.Add(SignedURLClockSkew)) {
		return fmt.Errorf("%w (expired at %s)", ErrURLExpired, expiry.UTC().Format(time.RFC3339))
	}
	if issued.After(now.Add(SignedURLClockSkew)) {
		return fmt.Errorf("%w (issued at %s)", ErrURLNotYetValid, issued.UTC().Format(time.RFC3339))
	}
	return nil
}

// urlMAC returns HMAC-SHA256(key, u.String()).
func urlMAC(key []byte, u *url.URL) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(u.String()))
	return m.Sum(nil)
}

// decodeURLSignature accepts the signature padded (as SignURL and Pomerium
// write it) or unpadded, in either base64 alphabet's URL form.
func decodeURLSignature(s string) ([]byte, error) {
	if b, err := base64.URLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// parseUnixParam reads a signed time parameter. A signed URL whose times are
// missing or malformed cannot come from SignURL, so it is ErrURLSignature.
func parseUnixParam(q url.Values, name string) (time.Time, error) {
	vs := q[name]
	if len(vs) != 1 {
		return time.Time{}, fmt.Errorf("%w: missing or repeated %s", ErrURLSignature, name)
	}
	n, err := strconv.ParseInt(vs[0], 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: malformed %s", ErrURLSignature, name)
	}
	return time.Unix(n, 0), nil
}
