package config

import (
	"fmt"
	"net/textproto"
	"strings"
)

// The values set_request_headers may name, as Pomerium documents them:
// ${pomerium.id_token}, ${pomerium.access_token} (the identity provider's
// tokens of the user's session), ${pomerium.jwt} (the identity JWT, the
// value of X-Pomerium-Jwt-Assertion), ${pomerium.client_cert_fingerprint}
// (the SHA-256 of the client certificate of downstream mTLS, "" without
// one) and
// ${pomerium.request.headers.<name>} (a header of the incoming request).
const (
	VarIDToken               = "pomerium.id_token"
	VarAccessToken           = "pomerium.access_token"
	VarJWT                   = "pomerium.jwt"
	VarClientCertFingerprint = "pomerium.client_cert_fingerprint"
	VarRequestHeaderPrefix   = "pomerium.request.headers."
)

// HeaderTemplate is a set_request_headers value: literal text and
// ${pomerium.*} values ($pomerium.name works too; $$ is a literal $).
// A '$' that starts no pomerium value is kept as written, so a static
// value with a dollar sign (a password) passes unchanged.
type HeaderTemplate struct {
	parts []templatePart
}

type templatePart struct {
	lit string
	v   string // variable name, when lit is ""
}

// ParseHeaderTemplate parses a set_request_headers value.
func ParseHeaderTemplate(s string) (HeaderTemplate, error) {
	var t HeaderTemplate
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, templatePart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			lit.WriteByte(s[i])
			continue
		}
		var name string
		end := i
		switch {
		case s[i+1] == '$':
			lit.WriteByte('$')
			i++
			continue
		case s[i+1] == '{':
			j := strings.IndexByte(s[i+2:], '}')
			if j < 0 {
				lit.WriteByte('$')
				continue
			}
			name, end = s[i+2:i+2+j], i+2+j
		default:
			j := i + 1
			for j < len(s) && isVarByte(s[j]) {
				j++
			}
			name, end = s[i+1:j], j-1
		}
		if !strings.HasPrefix(name, "pomerium.") {
			lit.WriteByte('$')
			continue
		}
		if err := checkVar(name); err != nil {
			return HeaderTemplate{}, err
		}
		flush()
		t.parts = append(t.parts, templatePart{v: name})
		i = end
	}
	flush()
	return t, nil
}

func isVarByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

func checkVar(name string) error {
	switch name {
	case VarIDToken, VarAccessToken, VarJWT, VarClientCertFingerprint:
		return nil
	}
	if h, ok := strings.CutPrefix(name, VarRequestHeaderPrefix); ok && h != "" {
		// Any spelling: the proxy and Envoy treat '_' as '-' in the
		// names gatehouse owns.
		switch strings.ReplaceAll(strings.ToLower(h), "_", "-") {
		case "cookie", "authorization", "x-pomerium-authorization":
			// They carry gatehouse's session handle, which never
			// reaches an upstream.
			return fmt.Errorf("${%s} may carry the session credential, which never reaches an upstream", name)
		}
		return nil
	}
	return fmt.Errorf("unknown value ${%s}: expected ${%s}, ${%s}, ${%s}, ${%s} or ${%s<header>}",
		name, VarIDToken, VarAccessToken, VarJWT, VarClientCertFingerprint, VarRequestHeaderPrefix)
}

// Static reports whether the value names no pomerium value; Literal is
// then its text.
func (t HeaderTemplate) Static() bool {
	for _, p := range t.parts {
		if p.v != "" {
			return false
		}
	}
	return true
}

// Literal returns the text of a static template.
func (t HeaderTemplate) Literal() string {
	var b strings.Builder
	for _, p := range t.parts {
		b.WriteString(p.lit)
	}
	return b.String()
}

// Uses reports whether the template names the value v.
func (t HeaderTemplate) Uses(v string) bool {
	for _, p := range t.parts {
		if p.v == v {
			return true
		}
	}
	return false
}

// RequestHeaders returns the canonical names of the request headers the
// template reads.
func (t HeaderTemplate) RequestHeaders() []string {
	var out []string
	for _, p := range t.parts {
		if h, ok := strings.CutPrefix(p.v, VarRequestHeaderPrefix); ok {
			out = append(out, textproto.CanonicalMIMEHeaderKey(h))
		}
	}
	return out
}

// Expand returns the value with each pomerium value replaced by value(name);
// for a request header the name is VarRequestHeaderPrefix and the
// header's canonical name.
func (t HeaderTemplate) Expand(value func(name string) string) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.v == "" {
			b.WriteString(p.lit)
			continue
		}
		name := p.v
		if h, ok := strings.CutPrefix(name, VarRequestHeaderPrefix); ok {
			name = VarRequestHeaderPrefix + textproto.CanonicalMIMEHeaderKey(h)
		}
		b.WriteString(value(name))
	}
	return b.String()
}

// HeaderTemplates returns the route's set_request_headers parsed (checked
// when the configuration loaded), by header name as configured.
func (r *Route) HeaderTemplates() map[string]HeaderTemplate {
	out := make(map[string]HeaderTemplate, len(r.SetRequestHeaders))
	for k, v := range r.SetRequestHeaders {
		t, err := ParseHeaderTemplate(v)
		if err != nil {
			t = HeaderTemplate{parts: []templatePart{{lit: v}}}
		}
		out[k] = t
	}
	return out
}
