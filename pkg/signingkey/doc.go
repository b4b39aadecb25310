// Package signingkey holds the keys that sign the identity JWT gatehouse
// sends upstream in X-Pomerium-Jwt-Assertion, publishes their public halves
// as a JWKS at /.well-known/pomerium/jwks.json, and defines the JWT's claims.
//
// The keys come from the signing_key option (Parse) or, when it is unset,
// from a P-256 key derived from shared_secret (Derive), so every service of
// a deployment signs and publishes the same key without extra set-up.
package signingkey
