package cryptutil

// The HKDF labels of gatehouse's per-purpose keys. Each credential kind is
// keyed by its own key derived from the configured secret, so a value made
// for one purpose can never verify as another: a session handle is not a
// service token, a signed URL is not a handle. A label is part of every
// deployment's keys; changing one invalidates what was signed with it.
const (
	// PurposeSessionHandle keys the HS256 session handle (cookie, bearer,
	// pomerium_jwt), derived from shared_secret.
	PurposeSessionHandle = "gatehouse session handle v1"
	// PurposeSignedURL keys the HMAC of the hand-off URLs between services
	// (sign_in, sign_out, callback), derived from shared_secret.
	PurposeSignedURL = "gatehouse signed url v1"
	// PurposeCookieSealing keys the AEAD that seals the OAuth state, the
	// handle in the callback URL and other browser-held values, derived
	// from cookie_secret.
	PurposeCookieSealing = "gatehouse cookie sealing v1"
	// PurposeSignOutCSRF keys the sign-out form's CSRF token, derived from
	// cookie_secret.
	PurposeSignOutCSRF = "gatehouse sign-out csrf v1"
)

// PurposeKey derives the 32-byte key for purpose (one of the Purpose*
// labels) from secret. It returns nil for an empty secret, so a missing
// secret stays detectable.
func PurposeKey(secret []byte, purpose string) []byte {
	if len(secret) == 0 {
		return nil
	}
	return DeriveKey(secret, purpose, SecretSize)
}
