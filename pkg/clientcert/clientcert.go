// Package clientcert verifies the client certificates of downstream mTLS
// (Pomerium's downstream_mtls settings): a chain against CA bundles, a
// CRL, subject alternative name patterns and a maximum chain depth. The
// TLS listener calls VerifyChain during the handshake (enforcement
// reject_connection); authorize calls Check for the certificate the proxy
// forwards in a CheckRequest, and gets the policy.ClientCertificate the
// client_certificate and invalid_client_certificate criteria read.
package clientcert

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/pkg/policy"
)

// Enforcement modes of downstream_mtls (Pomerium's names).
const (
	// EnforcePolicyWithDefaultDeny requests a client certificate and adds
	// `deny: invalid_client_certificate` to every route with a client CA
	// (the default).
	EnforcePolicyWithDefaultDeny = "policy_with_default_deny"
	// EnforcePolicy requests a client certificate and leaves the decision
	// to the routes' policies.
	EnforcePolicy = "policy"
	// EnforceRejectConnection refuses the TLS handshake of a client
	// without a valid certificate.
	EnforceRejectConnection = "reject_connection"
)

// SAN types of match_subject_alt_names.
var SANTypes = []string{"dns", "email", "ip_address", "uri", "user_principal_name"}

// SANMatcher is one entry of match_subject_alt_names: a SAN of Type whose
// whole value matches Pattern (RE2).
type SANMatcher struct {
	Type    string
	Pattern string
	re      *regexp.Regexp
}

// Options are what a Verifier checks.
type Options struct {
	// CA is a PEM bundle of trust anchors (roots or intermediates). Required.
	CA []byte
	// CRL is a PEM (or DER) bundle of certificate revocation lists.
	CRL []byte
	// SANs, when set, require at least one SAN matching one of them.
	SANs []SANMatcher
	// MaxVerifyDepth bounds the chain length above the leaf; 0 is no bound.
	MaxVerifyDepth int
}

// Verifier checks client certificates. It is safe for concurrent use;
// Check keeps a bounded cache of its answers.
type Verifier struct {
	roots    *x509.CertPool
	revoked  map[string]struct{} // issuer DER subject + serial
	sans     []SANMatcher
	maxDepth int

	mu    sync.Mutex
	cache map[string]*entry
}

type entry struct {
	cert      *policy.ClientCertificate
	reason    string
	recheckAt time.Time // the answer may change from then on (validity dates)
	checkedAt time.Time
}

// maxCacheEntries bounds Check's cache; when full it starts over.
const maxCacheEntries = 4096

// invalidRecheck is how long an invalid answer is kept: a certificate
// that is not valid yet becomes valid without changing.
const invalidRecheck = time.Minute

// NewSANMatcher compiles one match_subject_alt_names entry.
func NewSANMatcher(typ, pattern string) (SANMatcher, error) {
	typ = strings.ToLower(typ)
	known := false
	for _, t := range SANTypes {
		known = known || t == typ
	}
	if !known {
		return SANMatcher{}, fmt.Errorf("unknown SAN type %q: expected one of %s", typ, strings.Join(SANTypes, ", "))
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		return SANMatcher{}, fmt.Errorf("pattern %q is not a valid regular expression: %v", pattern, err)
	}
	return SANMatcher{Type: typ, Pattern: pattern, re: re}, nil
}

// ParseCAs returns the certificates of a PEM bundle, or an error saying
// what is wrong with it.
func ParseCAs(b []byte) ([]*x509.Certificate, error) {
	out, err := parsePEMBlocks(b, "CERTIFICATE", "certificate", x509.ParseCertificate)
	if err == nil && len(out) == 0 {
		err = errors.New("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")
	}
	return out, err
}

// parsePEMBlocks parses every PEM block of b, which must all be of type
// typ, with parse; what names one in errors ("certificate 2: ...").
func parsePEMBlocks[T any](b []byte, typ, what string, parse func([]byte) (T, error)) ([]T, error) {
	var out []T
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return out, nil
		}
		if blk.Type != typ {
			return nil, fmt.Errorf("found a %q PEM block; expected only %s blocks", blk.Type, typ)
		}
		v, err := parse(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s %d: %v", what, len(out)+1, err)
		}
		out = append(out, v)
	}
}

// ParseCRLs returns the revocation lists of a PEM bundle (or one DER CRL).
func ParseCRLs(b []byte) ([]*x509.RevocationList, error) {
	out, err := parsePEMBlocks(b, "X509 CRL", "CRL", x509.ParseRevocationList)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		crl, err := x509.ParseRevocationList(bytes.TrimSpace(b))
		if err != nil {
			return nil, errors.New("no certificate revocation list found (expected PEM -----BEGIN X509 CRL----- or DER)")
		}
		out = append(out, crl)
	}
	return out, nil
}

// New builds a Verifier. The error says which part of o is wrong.
func New(o Options) (*Verifier, error) {
	cas, err := ParseCAs(o.CA)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	v := &Verifier{roots: x509.NewCertPool(), revoked: map[string]struct{}{}, sans: o.SANs, maxDepth: o.MaxVerifyDepth, cache: map[string]*entry{}}
	for _, c := range cas {
		v.roots.AddCert(c)
	}
	if len(bytes.TrimSpace(o.CRL)) > 0 {
		crls, err := ParseCRLs(o.CRL)
		if err != nil {
			return nil, fmt.Errorf("crl: %w", err)
		}
		for _, crl := range crls {
			// A CRL from a CA of the bundle must carry its signature; one
			// from another issuer (an intermediate the client sends) can
			// only revoke more, never admit.
			var issuer *x509.Certificate
			for _, c := range cas {
				if bytes.Equal(c.RawSubject, crl.RawIssuer) {
					issuer = c
					if crl.CheckSignatureFrom(c) == nil {
						break
					}
				}
			}
			if issuer != nil && crl.CheckSignatureFrom(issuer) != nil {
				return nil, fmt.Errorf("crl: the CRL of %q is not signed by that CA's key", crl.Issuer.String())
			}
			for _, e := range crl.RevokedCertificateEntries {
				v.revoked[string(crl.RawIssuer)+e.SerialNumber.String()] = struct{}{}
			}
		}
	}
	return v, nil
}

// Pool returns the trust anchors, to advertise in the TLS handshake.
func (v *Verifier) Pool() *x509.CertPool { return v.roots }

// VerifyChain verifies a presented chain (leaf first) at now: signature
// chain to an anchor, validity dates, revocation, SANs and depth.
func (v *Verifier) VerifyChain(chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("no client certificate")
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: v.roots, Intermediates: inter, CurrentTime: now,
		// Like Envoy, the extended key usage is not checked.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return err
	}
	ok := false
	var depthErr, revokedErr error
	for _, ch := range chains {
		if v.maxDepth > 0 && len(ch)-1 > v.maxDepth {
			depthErr = fmt.Errorf("certificate chain is %d long above the leaf, more than max_verify_depth %d", len(ch)-1, v.maxDepth)
			continue
		}
		if c := v.revokedIn(ch); c != nil {
			revokedErr = fmt.Errorf("certificate %q (serial %s) is revoked by the CRL", c.Subject.String(), c.SerialNumber)
			continue
		}
		ok = true
		break
	}
	switch {
	case !ok && revokedErr != nil:
		return revokedErr
	case !ok:
		return depthErr
	}
	if len(v.sans) > 0 && !v.sansMatch(leaf) {
		return errors.New("no subject alternative name of the certificate matches downstream_mtls.match_subject_alt_names")
	}
	return nil
}

// revokedIn returns the first certificate of a verified chain (the anchor
// aside) that a CRL revokes.
func (v *Verifier) revokedIn(ch []*x509.Certificate) *x509.Certificate {
	if len(v.revoked) == 0 {
		return nil
	}
	for _, c := range ch[:len(ch)-1] {
		if _, bad := v.revoked[string(c.RawIssuer)+c.SerialNumber.String()]; bad {
			return c
		}
	}
	return nil
}

func (v *Verifier) sansMatch(c *x509.Certificate) bool {
	for _, m := range v.sans {
		var names []string
		switch m.Type {
		case "dns":
			names = c.DNSNames
		case "email":
			names = c.EmailAddresses
		case "ip_address":
			for _, ip := range c.IPAddresses {
				names = append(names, ip.String())
			}
		case "uri":
			for _, u := range c.URIs {
				names = append(names, u.String())
			}
		case "user_principal_name":
			names = userPrincipalNames(c)
		}
		for _, n := range names {
			if m.re.MatchString(n) {
				return true
			}
		}
	}
	return false
}

var (
	oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
)

// userPrincipalNames returns the Microsoft UPN otherName SANs of c.
func userPrincipalNames(c *x509.Certificate) []string {
	var out []string
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSAN) {
			continue
		}
		var seq asn1.RawValue
		if _, err := asn1.Unmarshal(ext.Value, &seq); err != nil {
			return nil
		}
		rest := seq.Bytes
		for len(rest) > 0 {
			var gn asn1.RawValue
			var err error
			if rest, err = asn1.Unmarshal(rest, &gn); err != nil {
				return out
			}
			if gn.Class != asn1.ClassContextSpecific || gn.Tag != 0 {
				continue // not an otherName
			}
			var other struct {
				ID    asn1.ObjectIdentifier
				Value asn1.RawValue `asn1:"explicit,tag:0"`
			}
			if _, err := asn1.UnmarshalWithParams(gn.FullBytes, &other, "tag:0"); err != nil || !other.ID.Equal(oidUPN) {
				continue
			}
			var s string
			if _, err := asn1.UnmarshalWithParams(other.Value.Bytes, &s, "utf8"); err == nil {
				out = append(out, s)
			}
		}
	}
	return out
}

// notPresented is the answer for a request without a certificate.
var notPresented = &policy.ClientCertificate{}

// Check verifies the chain a proxy forwarded in a CheckRequest
// (attributes.source.certificate: URL-encoded PEM, leaf first, as Envoy
// sends it; raw PEM is accepted too) at now, and returns what the policy
// criteria read, with the reason it is not valid ("" when it is). An empty
// s means no certificate. Answers are cached by s; the result is shared
// and must not be modified.
func (v *Verifier) Check(s string, now time.Time) (*policy.ClientCertificate, string) {
	if s == "" {
		return notPresented, "no client certificate"
	}
	v.mu.Lock()
	e := v.cache[s]
	v.mu.Unlock()
	if e != nil && now.Before(e.recheckAt) && !now.Before(e.checkedAt) {
		return e.cert, e.reason
	}
	e = v.check(s, now)
	v.mu.Lock()
	if len(v.cache) >= maxCacheEntries {
		clear(v.cache)
	}
	v.cache[s] = e
	v.mu.Unlock()
	return e.cert, e.reason
}

func (v *Verifier) check(s string, now time.Time) *entry {
	chain, err := ParseChain(s)
	if err != nil {
		return &entry{cert: &policy.ClientCertificate{Presented: true}, reason: err.Error(), checkedAt: now, recheckAt: now.Add(invalidRecheck)}
	}
	cert := Describe(chain[0])
	e := &entry{cert: cert, checkedAt: now}
	if err := v.VerifyChain(chain, now); err != nil {
		e.reason = err.Error()
		e.recheckAt = now.Add(invalidRecheck)
		return e
	}
	cert.Valid, cert.Verified = true, true
	e.recheckAt = now.Add(invalidRecheck)
	for _, c := range chain {
		if c.NotAfter.Before(e.recheckAt) {
			e.recheckAt = c.NotAfter
		}
	}
	return e
}

// Describe returns what the policy criteria read of a leaf certificate
// (not verified: Valid and Verified are false).
func Describe(leaf *x509.Certificate) *policy.ClientCertificate {
	fp := sha256.Sum256(leaf.Raw)
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	c := &policy.ClientCertificate{
		Presented:      true,
		Fingerprint:    hex.EncodeToString(fp[:]),
		SPKIHash:       base64.StdEncoding.EncodeToString(spki[:]),
		DNSNames:       leaf.DNSNames,
		EmailAddresses: leaf.EmailAddresses,
	}
	for _, u := range leaf.URIs {
		c.URIs = append(c.URIs, u.String())
	}
	return c
}

// Fingerprint returns the SHA-256 fingerprint of a certificate as
// client_certificate and ${pomerium.client_cert_fingerprint} write it.
func Fingerprint(c *x509.Certificate) string {
	fp := sha256.Sum256(c.Raw)
	return hex.EncodeToString(fp[:])
}

// Encode returns a chain as the proxy forwards it to authorize: PEM, leaf
// first, URL-encoded (Envoy's attributes.source.certificate form).
func Encode(chain []*x509.Certificate) string {
	var b bytes.Buffer
	for _, c := range chain {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return url.PathEscape(b.String())
}

// ParseChain parses a forwarded chain (see Encode; raw PEM too).
func ParseChain(s string) ([]*x509.Certificate, error) {
	if !strings.Contains(s, "-----BEGIN ") { // escaped, the space is %20
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, fmt.Errorf("client certificate: not URL-encoded PEM: %v", err)
		}
		s = u
	}
	var chain []*x509.Certificate
	rest := []byte(s)
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %v", err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("client certificate: no PEM certificate")
	}
	return chain, nil
}
