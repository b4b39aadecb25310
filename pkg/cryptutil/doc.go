// Package cryptutil holds the small cryptographic building blocks shared by
// every gatehouse service: decoding the base64 secrets of the configuration
// (shared_secret, cookie_secret), sealing short values with an AEAD keyed by
// cookie_secret, HMAC-signed redirect URLs with issue and expiry times,
// HKDF key derivation and random tokens.
//
// Nothing in this package logs, and no error message contains key material.
package cryptutil
