package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse/gatehouse/pkg/clientcert"
	"github.com/gatehouse/gatehouse/pkg/policy"
)

// DownstreamMTLS is Pomerium's downstream_mtls group: the client
// certificates the HTTPS listener asks for and how they are enforced.
type DownstreamMTLS struct {
	// CA is the PEM bundle (or base64 of it) of trust anchors for client
	// certificates; required for downstream mTLS.
	CA string `yaml:"ca"`
	// CAFile is CA read from a file.
	CAFile string `yaml:"ca_file"`
	// CRL is a PEM bundle (or base64 of it) of certificate revocation lists.
	CRL string `yaml:"crl"`
	// CRLFile is CRL read from a file.
	CRLFile string `yaml:"crl_file"`
	// Enforcement is policy_with_default_deny (default), policy or
	// reject_connection.
	Enforcement string `yaml:"enforcement"`
	// MatchSubjectAltNames, when set, requires a SAN matching one entry,
	// each {type: regex} with type dns, email, ip_address, uri or
	// user_principal_name; the regex matches the whole name.
	MatchSubjectAltNames []map[string]string `yaml:"match_subject_alt_names"`
	// MaxVerifyDepth bounds the chain above the leaf (default 1: issued
	// directly by a CA of the bundle); 0 is no bound.
	MaxVerifyDepth *int `yaml:"max_verify_depth"`
}

// MTLS is the downstream mTLS derived from the configuration.
type MTLS struct {
	// Enforcement is one of clientcert's Enforce* modes.
	Enforcement string
	// CA verifies against downstream_mtls (nil when only routes set a CA).
	CA *clientcert.Verifier
	// Pool holds every client CA (downstream_mtls's and the routes'):
	// advertised in the handshake, and required with reject_connection.
	Pool *x509.CertPool
	// verifiers are every distinct verifier, for VerifyChain.
	verifiers []*clientcert.Verifier
}

// ClientAuth returns the tls.ClientAuthType of the HTTPS listener.
func (m *MTLS) ClientAuth() tls.ClientAuthType {
	switch {
	case m == nil:
		return tls.NoClientCert
	case m.Enforcement == clientcert.EnforceRejectConnection:
		return tls.RequireAnyClientCert // verified by VerifyConnection
	default:
		// Any certificate, or none, passes the handshake: the policy
		// decides (invalid_client_certificate), as in Pomerium.
		return tls.RequestClientCert
	}
}

// VerifyConnection is the listener's tls.Config.VerifyConnection: with
// reject_connection a handshake succeeds only with a certificate valid
// for one of the client CAs; otherwise every handshake goes on.
func (m *MTLS) VerifyConnection(cs tls.ConnectionState) error {
	if m == nil || m.Enforcement != clientcert.EnforceRejectConnection {
		return nil
	}
	now := time.Now()
	var first error
	for _, v := range m.verifiers {
		err := v.VerifyChain(cs.PeerCertificates, now)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return fmt.Errorf("client certificate refused: %w", first)
}

// denyInvalidClientCertificate is the rule enforcement
// policy_with_default_deny adds to every route with a client CA.
var denyInvalidClientCertificate = &policy.Policy{Rules: []policy.Rule{{
	Deny: &policy.Action{Or: []policy.Criterion{{Name: "invalid_client_certificate"}}},
}}}

// mtlsDefaultDeny reports whether route r gets denyInvalidClientCertificate.
func (c *Config) mtlsDefaultDeny(r *Route) bool {
	return c.MTLS != nil && r.ClientCA != nil && c.MTLS.Enforcement != clientcert.EnforcePolicy
}

// validateDownstreamMTLS reads and checks downstream_mtls and the routes'
// tls_downstream_client_ca, and builds c.MTLS and each Route.ClientCA.
func (c *Config) validateDownstreamMTLS(errs *Errors) {
	m := &c.DownstreamMTLS
	const k = "downstream_mtls."
	at := func(key string) int {
		if l := c.lines[k+key]; l > 0 {
			return l
		}
		return c.lines["downstream_mtls"]
	}
	ca := c.pemOption(errs, k+"ca", m.CA, k+"ca_file", m.CAFile, at)
	crl := c.pemOption(errs, k+"crl", m.CRL, k+"crl_file", m.CRLFile, at)

	mode := strings.ToLower(m.Enforcement)
	switch mode {
	case "":
		mode = clientcert.EnforcePolicyWithDefaultDeny
	case clientcert.EnforcePolicyWithDefaultDeny, clientcert.EnforcePolicy, clientcert.EnforceRejectConnection:
	default:
		errs.add(k+"enforcement", at("enforcement"), fmt.Sprintf("expected policy_with_default_deny, policy or reject_connection, got %q", m.Enforcement))
	}
	var sans []clientcert.SANMatcher
	for i, entry := range m.MatchSubjectAltNames {
		key := fmt.Sprintf("%smatch_subject_alt_names[%d]", k, i)
		if len(entry) != 1 {
			errs.add(key, at("match_subject_alt_names"), "expected one {type: pattern} entry, such as {email: '.*@example\\.com'}")
			continue
		}
		for typ, pattern := range entry {
			sm, err := clientcert.NewSANMatcher(typ, pattern)
			if err != nil {
				errs.add(key, at("match_subject_alt_names"), err.Error())
				continue
			}
			sans = append(sans, sm)
		}
	}
	depth := 1
	if m.MaxVerifyDepth != nil {
		depth = *m.MaxVerifyDepth
		if depth < 0 {
			errs.add(k+"max_verify_depth", at("max_verify_depth"), "expected 0 (no limit) or a positive number")
		}
	}

	mt := &MTLS{Enforcement: mode, Pool: x509.NewCertPool()}
	crlReported := false
	build := func(key string, line int, caPEM []byte) *clientcert.Verifier {
		v, err := clientcert.New(clientcert.Options{CA: caPEM, CRL: crl, SANs: sans, MaxVerifyDepth: depth})
		if err != nil {
			// "ca: ..." or "crl: ...": name the option that is wrong.
			what, msg, _ := strings.Cut(err.Error(), ": ")
			if what == "crl" {
				if crlReported {
					return nil
				}
				crlReported = true
				key, line = k+"crl", at("crl")
				if m.CRLFile != "" {
					key, line = k+"crl_file", at("crl_file")
				}
			}
			errs.add(key, line, msg)
			return nil
		}
		for _, cert := range mustParseCAs(caPEM) {
			mt.Pool.AddCert(cert)
		}
		mt.verifiers = append(mt.verifiers, v)
		return v
	}
	if ca != nil {
		key := k + "ca"
		if m.CAFile != "" {
			key = k + "ca_file"
		}
		mt.CA = build(key, at(strings.TrimPrefix(key, k)), ca)
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		rk := func(s string) string { return fmt.Sprintf("routes[%d].%s", i, s) }
		rline := func(s string) int {
			if l := c.lines[rk(s)]; l > 0 {
				return l
			}
			return c.lines[fmt.Sprintf("routes[%d]", i)]
		}
		rca := c.pemOption(errs, rk("tls_downstream_client_ca"), r.TLSDownstreamClientCA, rk("tls_downstream_client_ca_file"), r.TLSDownstreamClientCAFile, rline)
		switch {
		case rca != nil:
			key := rk("tls_downstream_client_ca")
			if r.TLSDownstreamClientCAFile != "" {
				key = rk("tls_downstream_client_ca_file")
			}
			r.ClientCA = build(key, rline(strings.TrimPrefix(key, fmt.Sprintf("routes[%d].", i))), rca)
		default:
			r.ClientCA = mt.CA
		}
	}
	if len(mt.verifiers) == 0 {
		if m.Enforcement != "" || len(m.MatchSubjectAltNames) > 0 || m.MaxVerifyDepth != nil || crl != nil {
			errs.add(k+"ca", at("ca"), "required for downstream mTLS: the PEM bundle of CAs that issue client certificates (or ca_file)")
		}
		return
	}
	if c.InsecureServer && c.Runs(ServiceProxy) {
		errs.add(k+"ca", at("ca"), "downstream mTLS needs gatehouse to terminate TLS: it cannot see client certificates with insecure_server")
	}
	c.MTLS = mt
}

// pemOption returns the PEM of an inline option (PEM or base64 PEM) or of
// its _file form; nil when neither is set or on error.
func (c *Config) pemOption(errs *Errors, key, inline, fileKey, file string, at func(string) int) []byte {
	short := func(s string) string {
		if i := strings.LastIndexByte(s, '.'); i >= 0 {
			return s[i+1:]
		}
		return s
	}
	switch {
	case inline != "" && file != "":
		errs.add(key, at(short(key)), fmt.Sprintf("set only one of %s and %s", short(key), short(fileKey)))
		return nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			errs.add(fileKey, at(short(fileKey)), fmt.Sprintf("cannot read file: %v", err))
			return nil
		}
		return b
	case inline != "":
		return []byte(maybeBase64PEM(inline))
	}
	return nil
}

func mustParseCAs(b []byte) []*x509.Certificate {
	cs, _ := clientcert.ParseCAs(b)
	return cs
}

// applyNestedEnv sets the options of groups such as downstream_mtls from
// environment variables named GROUP_OPTION (DOWNSTREAM_MTLS_CA_FILE), as
// Pomerium reads them.
func applyNestedEnv(o *Options, env Environ, errs *Errors, lines map[string]int) {
	groups := []struct {
		name string
		dst  any
	}{{"downstream_mtls", &o.DownstreamMTLS}}
	for _, g := range groups {
		v := reflect.ValueOf(g.dst).Elem()
		for name, i := range fieldIndex(v.Type()) {
			full := g.name + "." + name
			envName := strings.ToUpper(g.name + "_" + name)
			val, ok := env(envName)
			if !ok {
				continue
			}
			delete(lines, full)
			field := v.Field(i)
			if field.Kind() == reflect.String {
				field.SetString(val)
				continue
			}
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(val), &n); err != nil || len(n.Content) == 0 {
				n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}
			} else {
				n = *n.Content[0]
			}
			if err := decodeField(&n, field, full, errs, lines); err != nil {
				errs.add(full, 0, fmt.Sprintf("from environment variable %s: %v", envName, err))
			}
		}
	}
}
