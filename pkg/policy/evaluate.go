package policy

import (
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// Input is the request a policy is evaluated against.
type Input struct {
	Method   string      // HTTP method, e.g. "GET"
	Path     string      // URL path without the query
	Host     string      // request host
	SourceIP netip.Addr  // client address; the zero Addr matches no source_ip
	Headers  http.Header // may be nil; read only by cors_preflight (Origin, Access-Control-Request-Method), with canonical keys
	Session  *Subject    // nil when the request carries no valid session
	// ClientCert is the client certificate of the TLS connection, as
	// authorize verified it; nil means none was presented.
	ClientCert *ClientCertificate
	Now        time.Time // time of the request; the zero Time means time.Now()
}

// Subject is the signed-in user a request carries.
type Subject struct {
	SessionID string
	UserID    string // the IdP's subject; matched by `user`
	Email     string // matched exactly (case included) by `email` and `domain`
	Name      string
	Groups    []string                // the IdP's groups claim; matched by `groups`
	Claims    map[string][]ClaimValue // every claim of session and user, typed as JSON; matched by claim/<name>
}

// JSONType is the JSON type of a claim value. The zero value is
// JSONString.
type JSONType uint8

// The JSON types a claim value may have (nulls are dropped).
const (
	JSONString JSONType = iota
	JSONNumber
	JSONBool
	JSONObject
)

// ClaimValue is one value of a claim, typed as the ID token's JSON has
// it, so that claim/<name> compares as Pomerium does: `claim/x: true`
// matches the JSON boolean true and not the string "true". A claim that
// is a list has one ClaimValue per element (nested lists flattened).
type ClaimValue struct {
	Type JSONType
	// Text is the string itself; for a number its shortest decimal form
	// (strconv.FormatFloat(f, 'f', -1, 64), so 30 and 30.0 are "30"); for a
	// bool "true" or "false"; for an object its compact JSON.
	Text string
}

// StringClaims returns vs as string claim values.
func StringClaims(vs ...string) []ClaimValue {
	out := make([]ClaimValue, len(vs))
	for i, v := range vs {
		out[i] = ClaimValue{Type: JSONString, Text: v}
	}
	return out
}

// NumberClaim returns f as a number claim value in its canonical text.
func NumberClaim(f float64) ClaimValue {
	return ClaimValue{Type: JSONNumber, Text: strconv.FormatFloat(f, 'f', -1, 64)}
}

// ClientCertificate is what the client_certificate and
// invalid_client_certificate criteria know of the certificate the client
// presented in its TLS handshake. It is built once per certificate (and
// CA) and shared, read-only, by every request that presents it.
type ClientCertificate struct {
	// Presented is true when the client sent a certificate.
	Presented bool
	// Valid is true when the certificate verified against the route's
	// client CA (chain, validity dates, CRL, match_subject_alt_names,
	// max_verify_depth), or when no client CA applies to the route, as in
	// Pomerium.
	Valid bool
	// Verified is true when the certificate was presented and verified
	// against a client CA; client_certificate matches only such a one.
	Verified bool
	// Fingerprint is the SHA-256 of the leaf's DER, lower-case hex.
	Fingerprint string
	// SPKIHash is the SHA-256 of the leaf's SubjectPublicKeyInfo, base64.
	SPKIHash string
	// The leaf's subject alternative names.
	DNSNames, EmailAddresses, URIs []string
}

// Result is the value of one action (allow or deny) with its reasons.
type Result struct {
	Value   bool
	Reasons Reasons
}

// Decision is the outcome of evaluating a request.
type Decision struct {
	// Allow is true when the request may pass: an allow matched, no deny
	// matched and no sign-in is needed.
	Allow bool
	// Reasons explains the outcome: with NeedsSignIn the reasons carrying
	// user-unauthenticated, else the deny reasons when a deny matched,
	// else the allow reasons.
	Reasons Reasons
	// NeedsSignIn is true when the allow or the deny result carries
	// user-unauthenticated: the caller sends the user to sign in (or
	// answers 401) rather than 403, as Pomerium does.
	NeedsSignIn bool
	// AllowResult and DenyResult are the raw results of the two actions.
	AllowResult, DenyResult Result
}

// Evaluate evaluates the request in. It does not allocate and does not
// keep in; it is safe for concurrent use.
//
// in escapes to the heap (it is handed to the compiled closures), so a
// caller that wants zero allocations per request keeps its Input in
// memory that is already on the heap, e.g. in its per-request state.
func (e *Evaluator) Evaluate(in *Input) Decision {
	var d Decision
	if e.allow != nil {
		d.AllowResult.Value, d.AllowResult.Reasons = e.allow(in)
	}
	if e.deny != nil {
		d.DenyResult.Value, d.DenyResult.Reasons = e.deny(in)
	}
	switch {
	case d.AllowResult.Reasons&ReasonUserUnauthenticated != 0:
		d.NeedsSignIn = true
		d.Reasons = d.AllowResult.Reasons
	case d.DenyResult.Reasons&ReasonUserUnauthenticated != 0:
		d.NeedsSignIn = true
		d.Reasons = d.DenyResult.Reasons
	case d.DenyResult.Value:
		d.Reasons = d.DenyResult.Reasons
	default:
		d.Allow = d.AllowResult.Value
		d.Reasons = d.AllowResult.Reasons
	}
	return d
}

func now(in *Input) time.Time {
	if in.Now.IsZero() {
		return time.Now()
	}
	return in.Now
}
