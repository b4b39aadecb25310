package handoff

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

// QueryCSRFToken is the form field of the sign-out form's CSRF token.
const QueryCSRFToken = "csrf_token"

// ErrSignOutCSRF means a sign-out POST carried no valid CSRF token.
var ErrSignOutCSRF = errors.New("the sign-out form is not from this gatehouse (CSRF token missing or wrong)")

// SignOutToken is the CSRF token of a sign-out form for the browser's
// session: an HMAC of subject (the session id on the authenticate host, the
// route cookie's value on a route host; "" when there is none) under a key
// derived from cookieKey. It needs no storage, and a token is worthless for
// any other session; a page on another site cannot read it (the token is
// only in gatehouse's own pages and JSON, which carry no CORS header).
func SignOutToken(cookieKey []byte, subject string) string {
	m := hmac.New(sha256.New, cryptutil.PurposeKey(cookieKey, cryptutil.PurposeSignOutCSRF))
	m.Write([]byte(subject))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckSignOutToken compares token with SignOutToken(cookieKey, subject)
// in constant time: nil or ErrSignOutCSRF.
func CheckSignOutToken(cookieKey []byte, subject, token string) error {
	if token == "" || !hmac.Equal([]byte(token), []byte(SignOutToken(cookieKey, subject))) {
		return ErrSignOutCSRF
	}
	return nil
}
