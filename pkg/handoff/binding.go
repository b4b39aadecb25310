package handoff

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

// A sign-in binding ties a browser sign-in to the browser that started it,
// so that the callback URL authenticate hands back is worthless in any
// other browser (login CSRF, session fixation, a callback URL leaked
// through history or logs).
//
// When the proxy sends a browser to sign in, it sets a cookie on the route
// host named BindingCookiePrefix+id holding a random nonce, and adds
// "id.base64url(SHA-256(nonce))" to the signed sign-in URL (QueryBinding).
// Authenticate carries the parameter, unchanged, into the signed callback
// URL; the proxy's callback accepts only a browser whose cookie hashes to
// it, once, and clears the cookie. The URL holds only the hash, so whoever
// sees the URL still cannot make the cookie.
//
// Pomerium's hand-off URLs are bearer URLs (signed and time-limited only);
// this follows oauth2-proxy, whose CSRF cookie binds the OAuth state to the
// browser, with one cookie per sign-in (its cookie_csrf_per_request), so
// that two tabs signing in at once do not overwrite each other's cookie.

// QueryBinding carries the sign-in binding in sign-in and callback URLs.
const QueryBinding = "pomerium_binding"

// BindingCookiePrefix starts the name of a binding cookie; the binding's id
// follows.
const BindingCookiePrefix = "_pomerium_signin_"

// BindingMaxAge is how long a binding cookie lives: the sign-in URL's TTL,
// a sign-in at the IdP (authenticate allows 10 minutes) and the callback.
const BindingMaxAge = 15 * time.Minute

const (
	bindingIDBytes    = 12 // 16 base64url characters
	bindingNonceBytes = 32
	bindingIDLen      = 16
	bindingHashLen    = 43 // SHA-256, unpadded base64url
)

// ErrBinding means a sign-in binding is missing, malformed, or does not
// match the browser's cookie.
var ErrBinding = errors.New("handoff: the sign-in was not started in this browser")

// Binding is a fresh sign-in binding: the id names the cookie, the nonce is
// its value. Only the browser gets the nonce.
type Binding struct {
	ID    string
	Nonce string
}

// NewBinding returns a random binding.
func NewBinding() Binding {
	return Binding{ID: cryptutil.RandomToken(bindingIDBytes), Nonce: cryptutil.RandomToken(bindingNonceBytes)}
}

// Param is the binding's form in sign-in and callback URLs: the id and the
// hash of the nonce.
func (b Binding) Param() string {
	return b.ID + "." + hashNonce(b.Nonce)
}

// Cookie is the binding cookie the browser keeps until the callback.
// It is HttpOnly, host-only (no Domain: a sibling host never sees it),
// scoped to CallbackPath so no other request (and no upstream) carries it,
// and SameSite=Lax, which still comes with the top-level redirect from the
// authenticate host. secure is whether the browser reaches the route over
// https.
func (b Binding) Cookie(secure bool) *http.Cookie {
	return &http.Cookie{
		Name:     BindingCookiePrefix + b.ID,
		Value:    b.Nonce,
		Path:     CallbackPath,
		MaxAge:   int(BindingMaxAge / time.Second),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// ClearBindingCookie returns the cookie that removes the binding cookie of
// id.
func ClearBindingCookie(id string, secure bool) *http.Cookie {
	return &http.Cookie{
		Name: BindingCookiePrefix + id, Value: "", Path: CallbackPath, MaxAge: -1,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	}
}

func hashNonce(nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ParseBinding checks the form of a binding parameter and returns its id.
func ParseBinding(param string) (id string, err error) {
	id, hash, ok := strings.Cut(param, ".")
	if !ok || len(id) != bindingIDLen || len(hash) != bindingHashLen || !isBase64URL(id) || !isBase64URL(hash) {
		return "", fmt.Errorf("%w: malformed %s", ErrBinding, QueryBinding)
	}
	return id, nil
}

// VerifyBinding checks that r carries the binding cookie param names and
// that its nonce hashes to param. It returns the binding's id when the
// parameter is well formed (so the caller can clear the cookie and mark
// the binding used even when the check fails).
func VerifyBinding(param string, r *http.Request) (id string, err error) {
	id, err = ParseBinding(param)
	if err != nil {
		return "", err
	}
	c, err := r.Cookie(BindingCookiePrefix + id)
	if err != nil || c.Value == "" {
		return id, fmt.Errorf("%w: no sign-in cookie", ErrBinding)
	}
	want := param[len(id)+1:]
	if subtle.ConstantTimeCompare([]byte(hashNonce(c.Value)), []byte(want)) != 1 {
		return id, fmt.Errorf("%w: the sign-in cookie does not match", ErrBinding)
	}
	return id, nil
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// BindSignInURL returns the browser sign-in URL signIn with the binding
// param added and the URL signed again. signIn must be a sign-in URL
// signed with key (authorize builds them); a programmatic one is refused,
// since no browser cookie follows a programmatic login.
func BindSignInURL(signIn *url.URL, param string, key []byte, now time.Time) (*url.URL, error) {
	if signIn.Path != SignInPath {
		return nil, fmt.Errorf("handoff: %s is not a sign-in URL", signIn.Path)
	}
	if err := cryptutil.VerifySignedURL(key, signIn, now); err != nil {
		return nil, err
	}
	q := signIn.Query()
	if q.Get(QueryIsProgrammatic) != "" {
		return nil, errors.New("handoff: a programmatic sign-in has no browser binding")
	}
	if _, err := ParseBinding(param); err != nil {
		return nil, err
	}
	q.Set(QueryBinding, param)
	for _, k := range []string{cryptutil.QueryIssued, cryptutil.QueryExpiry, cryptutil.QuerySignature} {
		q.Del(k)
	}
	u := *signIn
	u.RawQuery = q.Encode()
	return cryptutil.SignURL(key, &u, now, TTL), nil
}
