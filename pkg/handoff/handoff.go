// Package handoff builds and checks the URLs that send a browser between
// gatehouse's services during sign-in and sign-out: the signed sign-in URL
// on the authenticate host, and the callback on a route host that carries
// the sealed session handle. Proxy, authorize and authenticate all use it,
// so the three agree on every parameter name (Pomerium's) and on every
// rule: where a programmatic login may hand its session handle
// (ProgrammaticRedirect), the binding of a sign-in to its browser
// (Binding), the sign-out forms' CSRF token (SignOutToken) and the query
// parameters no upstream may see (StripReservedQuery).
package handoff

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

// Query parameter names, as Pomerium uses them.
const (
	// QueryRedirectURI is where the user goes once signed in.
	QueryRedirectURI = "pomerium_redirect_uri"
	// QuerySessionEncrypted carries the session handle sealed with cookie_secret.
	QuerySessionEncrypted = "pomerium_session_encrypted"
	// QueryIsProgrammatic marks a programmatic (API client) login.
	QueryIsProgrammatic = "pomerium_programmatic"
	// QueryJWT carries the session handle to a programmatic client.
	QueryJWT = "pomerium_jwt"
)

// Paths served by the authenticate service and by every route host.
const (
	SignInPath   = "/.pomerium/sign_in"
	SignOutPath  = "/.pomerium/sign_out"
	CallbackPath = "/.pomerium/callback/"
	UserPagePath = "/.pomerium/"
	UserJSONPath = "/.pomerium/user"
	JWTPath      = "/.pomerium/jwt"
	// SignedOutPath is the "You are signed out" page a sign-out ends on
	// when nothing else is asked for.
	SignedOutPath     = "/.pomerium/signed_out"
	ProgrammaticLogin = "/.pomerium/api/v1/login"
)

// TTL is how long a hand-off URL stays valid.
const TTL = cryptutil.DefaultSignedURLTTL

// SignInURL returns the signed authenticate URL that starts a sign-in and
// comes back to redirectURI. programmatic asks for the handle to be given
// to redirectURI as pomerium_jwt instead of through a route callback.
func SignInURL(authenticateURL *url.URL, redirectURI string, programmatic bool, sharedKey []byte, now time.Time) *url.URL {
	u := *authenticateURL
	u.Path = SignInPath
	q := url.Values{QueryRedirectURI: {redirectURI}}
	if programmatic {
		q.Set(QueryIsProgrammatic, "true")
	}
	u.RawQuery = q.Encode()
	return cryptutil.SignURL(sharedKey, &u, now, TTL)
}

// SignOutURL returns the signed authenticate URL that signs the user out
// and then goes to redirectURI (may be empty). handle is the session handle
// the route host holds, sealed for the authenticate host: it names the
// session that ends, also when the browser has no session cookie for the
// authenticate host (another registrable domain, or a cookie that expired
// first). Authenticate ends no session on a signed URL without one.
func SignOutURL(authenticateURL *url.URL, redirectURI, handle string, sharedKey []byte, cookies *cryptutil.Cipher, now time.Time) *url.URL {
	u := *authenticateURL
	u.Path = SignOutPath
	q := url.Values{}
	if redirectURI != "" {
		q.Set(QueryRedirectURI, redirectURI)
	}
	if handle != "" && cookies != nil {
		q.Set(QuerySessionEncrypted, cookies.Seal([]byte(handle), []byte(u.Host)))
	}
	u.RawQuery = q.Encode()
	// Followed at once, like a callback, so as short-lived.
	return cryptutil.SignURL(sharedKey, &u, now, CallbackTTL)
}

// SignOutHandle returns the session handle carried by a sign-out URL that
// was received on host, or "" when it carries none or it does not open.
// The URL's signature must have been verified already.
func SignOutHandle(u *url.URL, host string, cookies *cryptutil.Cipher) string {
	sealed := u.Query().Get(QuerySessionEncrypted)
	if sealed == "" || cookies == nil {
		return ""
	}
	raw, err := cookies.Open(sealed, []byte(host))
	if err != nil {
		return ""
	}
	return string(raw)
}

// CallbackTTL is how long a callback URL stays valid. The browser follows
// it at once (it is the Location of authenticate's redirect), so it is kept
// short; cryptutil.SignedURLClockSkew is added for the clocks of split
// deployments.
const CallbackTTL = time.Minute

// CallbackURL returns the signed route-host URL that sets the route's
// session cookie from the sealed handle and then goes to redirectURI.
// The route host is taken from redirectURI. binding is the sign-in binding
// the sign-in URL carried (QueryBinding); the proxy accepts the callback
// only from the browser holding its cookie.
func CallbackURL(redirectURI *url.URL, handle, binding string, sharedKey []byte, cookies *cryptutil.Cipher, now time.Time) *url.URL {
	u := url.URL{Scheme: redirectURI.Scheme, Host: redirectURI.Host, Path: CallbackPath}
	q := url.Values{
		QueryRedirectURI:      {redirectURI.String()},
		QuerySessionEncrypted: {cookies.Seal([]byte(handle), []byte(redirectURI.Host))},
	}
	if binding != "" {
		q.Set(QueryBinding, binding)
	}
	u.RawQuery = q.Encode()
	return cryptutil.SignURL(sharedKey, &u, now, CallbackTTL)
}

// ErrBadCallback is returned for a callback that is not for this host.
var ErrBadCallback = errors.New("handoff: callback is not valid for this host")

// Callback is an opened callback URL.
type Callback struct {
	// Handle is the session handle for the route host's cookie.
	Handle string
	// RedirectURI is where the user goes next: an http(s) URL on the
	// callback's host.
	RedirectURI *url.URL
	// Binding is the sign-in binding (QueryBinding), well formed; check it
	// against the browser with VerifyBinding.
	Binding string
	// BindingID is the binding's id, for single use.
	BindingID string
	// Expiry is when the callback URL stops being valid.
	Expiry time.Time
}

// OpenCallback verifies a callback URL received on host and returns the
// session handle and where to send the user. A callback without a well
// formed sign-in binding is refused: every browser sign-in carries one.
func OpenCallback(u *url.URL, host string, sharedKey []byte, cookies *cryptutil.Cipher, now time.Time) (*Callback, error) {
	if err := cryptutil.VerifySignedURL(sharedKey, u, now); err != nil {
		return nil, err
	}
	q := u.Query()
	redirectURI, err := url.Parse(q.Get(QueryRedirectURI))
	if err != nil || redirectURI.Host == "" || (redirectURI.Scheme != "http" && redirectURI.Scheme != "https") {
		return nil, fmt.Errorf("%w: bad %s", ErrBadCallback, QueryRedirectURI)
	}
	if !sameHost(redirectURI.Host, host) {
		return nil, fmt.Errorf("%w: redirect is for %s", ErrBadCallback, redirectURI.Host)
	}
	binding := q.Get(QueryBinding)
	id, err := ParseBinding(binding)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCallback, err)
	}
	raw, err := cookies.Open(q.Get(QuerySessionEncrypted), []byte(redirectURI.Host))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCallback, err)
	}
	exp, _ := strconv.ParseInt(q.Get(cryptutil.QueryExpiry), 10, 64) // verified above
	return &Callback{
		Handle: string(raw), RedirectURI: redirectURI, Binding: binding, BindingID: id,
		Expiry: time.Unix(exp, 0).Add(cryptutil.SignedURLClockSkew),
	}, nil
}

// sameHost compares host names, ignoring the port only when one side has none.
func sameHost(a, b string) bool {
	if a == b {
		return true
	}
	ah, bh := stripPort(a), stripPort(b)
	return ah == bh && (ah == a || bh == b)
}

func stripPort(h string) string {
	if u, err := url.Parse("//" + h); err == nil {
		return u.Hostname()
	}
	return h
}
