package policy

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// clientCertificateCriterion matches the client certificate of the TLS
// connection with a certificate matcher (fingerprint, spki_hash and the
// gatehouse SAN conditions san_dns, san_email, san_uri). It holds only for
// a certificate that verified against a client CA (downstream_mtls.ca or
// the route's tls_downstream_client_ca): a pinned fingerprint never admits
// a certificate the CA did not issue, is expired or revoked.
type clientCertificateCriterion struct{}

func (clientCertificateCriterion) name() string       { return "client_certificate" }
func (clientCertificateCriterion) takes() valueKind   { return certValue{} }
func (clientCertificateCriterion) needs() subjectData { return needsRequest }
func (clientCertificateCriterion) compile(c *Criterion) check {
	m := c.Cert
	fps := slices.Clone(m.Fingerprints)
	spkis := slices.Clone(m.SPKIHashes)
	var sans []func(*ClientCertificate) bool
	for _, s := range []struct {
		m   *StringMatcher
		get func(*ClientCertificate) []string
	}{
		{m.SANDNS, func(c *ClientCertificate) []string { return c.DNSNames }},
		{m.SANEmail, func(c *ClientCertificate) []string { return c.EmailAddresses }},
		{m.SANURI, func(c *ClientCertificate) []string { return c.URIs }},
	} {
		if s.m == nil {
			continue
		}
		match, get := compileStringMatcher(s.m), s.get
		sans = append(sans, func(c *ClientCertificate) bool { return slices.ContainsFunc(get(c), match) })
	}
	return check{
		test: func(in *Input) bool {
			c := in.ClientCert
			if c == nil || !c.Verified {
				return false
			}
			if len(fps) > 0 && !slices.Contains(fps, c.Fingerprint) {
				return false
			}
			if len(spkis) > 0 && !slices.Contains(spkis, c.SPKIHash) {
				return false
			}
			for _, s := range sans {
				if !s(c) {
					return false
				}
			}
			return true
		},
		ok: ReasonClientCertificateOK, fail: ReasonClientCertificateUnauthorized,
	}
}

// certValue is the certificate matcher (Criterion.Cert).
type certValue struct{}

// certConditions are the keys of a certificate matcher.
var certConditions = []string{"fingerprint", "spki_hash", "san_dns", "san_email", "san_uri"}

func (certValue) parse(c *Criterion, _ string, n *yaml.Node) error {
	const what = `criterion "client_certificate"`
	if n.Kind != yaml.MappingNode {
		return errorf(n, "%s takes a certificate matcher such as {fingerprint: <sha256 hex>}, not %s", what, describe(n))
	}
	ps, err := pairs(n, what)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return errorf(n, "%s has no condition; use one of %s", what, strings.Join(certConditions, ", "))
	}
	m := &CertMatcher{}
	for _, p := range ps {
		condWhat := fmt.Sprintf("condition %q of %s", p.key, what)
		switch p.key {
		case "fingerprint":
			vs, err := scalarOrList(p.value, condWhat)
			if err != nil {
				return err
			}
			for _, v := range vs {
				f, ok := canonicalFingerprint(v)
				if !ok {
					return errorf(p.value, "%s: %q is not a SHA-256 fingerprint (64 hex digits, or 32 colon-separated upper-case pairs)", condWhat, v)
				}
				m.Fingerprints = append(m.Fingerprints, f)
			}
		case "spki_hash":
			vs, err := scalarOrList(p.value, condWhat)
			if err != nil {
				return err
			}
			for _, v := range vs {
				if b, err := base64.StdEncoding.DecodeString(v); err != nil || len(b) != 32 {
					return errorf(p.value, "%s: %q is not a base64 SHA-256 hash", condWhat, v)
				}
				m.SPKIHashes = append(m.SPKIHashes, v)
			}
		case "san_dns", "san_email", "san_uri":
			sm, err := parseStringMatcher("client_certificate/"+p.key, p.value)
			if err != nil {
				return err
			}
			switch p.key {
			case "san_dns":
				m.SANDNS = sm
			case "san_email":
				m.SANEmail = sm
			default:
				m.SANURI = sm
			}
		default:
			return errorf(p.keyN, "condition %q of %s is unknown%s; certificate matcher conditions are %s",
				p.key, what, suggest(p.key, certConditions), strings.Join(certConditions, ", "))
		}
	}
	c.Cert = m
	return nil
}

func (certValue) check(c *Criterion) error {
	m := c.Cert
	if m == nil || (len(m.Fingerprints) == 0 && len(m.SPKIHashes) == 0 && m.SANDNS == nil && m.SANEmail == nil && m.SANURI == nil) {
		return astError(c, "criterion %q has no condition", c.Name)
	}
	for _, sm := range []*StringMatcher{m.SANDNS, m.SANEmail, m.SANURI} {
		if sm == nil {
			continue
		}
		if err := (stringValue{}).check(&Criterion{Name: c.Name, Pos: c.Pos, String: sm}); err != nil {
			return err
		}
	}
	for _, f := range m.Fingerprints {
		if !shortFingerprintRE.MatchString(f) {
			return astError(c, "criterion %q: %q is not a SHA-256 fingerprint in lower-case hex", c.Name, f)
		}
	}
	return nil
}

var (
	shortFingerprintRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	longFingerprintRE  = regexp.MustCompile(`^[0-9A-F]{2}(:[0-9A-F]{2}){31}$`)
)

// canonicalFingerprint accepts Pomerium's two fingerprint forms (64
// lower-case hex digits, or 32 upper-case pairs separated by colons, as
// openssl prints them) and returns the first.
func canonicalFingerprint(s string) (string, bool) {
	switch {
	case shortFingerprintRE.MatchString(s):
		return s, true
	case longFingerprintRE.MatchString(s):
		return strings.ToLower(strings.ReplaceAll(s, ":", "")), true
	}
	return "", false
}
