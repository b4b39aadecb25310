package policy

import (
	"strings"
	"testing"
)

func TestClientCertificateCriteria(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	longFP := strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	spki := strings.Repeat("A", 43) + "="
	valid := &ClientCertificate{Presented: true, Valid: true, Verified: true, Fingerprint: fp, SPKIHash: spki,
		DNSNames: []string{"laptop.example.com"}, EmailAddresses: []string{"ann@example.com"}, URIs: []string{"spiffe://example.com/ann"}}
	invalid := &ClientCertificate{Presented: true, Fingerprint: fp, SPKIHash: spki}
	noCA := &ClientCertificate{Presented: true, Valid: true, Fingerprint: fp, SPKIHash: spki}
	for _, tc := range []struct {
		name, policy string
		cert         *ClientCertificate
		allow        bool
		reasons      string
	}{
		{"fingerprint", "allow: {or: [{client_certificate: {fingerprint: " + fp + "}}]}", valid, true, "client-certificate-ok"},
		{"long fingerprint", "allow: {or: [{client_certificate: {fingerprint: '" + longFP + "'}}]}", valid, true, "client-certificate-ok"},
		{"fingerprint list", "allow: {or: [{client_certificate: {fingerprint: [" + strings.Repeat("cd", 32) + ", " + fp + "]}}]}", valid, true, "client-certificate-ok"},
		{"other fingerprint", "allow: {or: [{client_certificate: {fingerprint: " + strings.Repeat("cd", 32) + "}}]}", valid, false, "client-certificate-unauthorized"},
		{"spki", "allow: {or: [{client_certificate: {spki_hash: " + spki + "}}]}", valid, true, "client-certificate-ok"},
		{"san email in", "allow: {or: [{client_certificate: {san_email: {in: [bob@example.com, ann@example.com]}}}]}", valid, true, "client-certificate-ok"},
		{"san dns ends_with", "allow: {or: [{client_certificate: {san_dns: {ends_with: .example.com}}}]}", valid, true, "client-certificate-ok"},
		{"san uri is", "allow: {or: [{client_certificate: {san_uri: 'spiffe://example.com/bob'}}]}", valid, false, "client-certificate-unauthorized"},
		{"all conditions", "allow: {or: [{client_certificate: {fingerprint: " + fp + ", san_email: nobody@example.com}}]}", valid, false, "client-certificate-unauthorized"},
		{"unverified certificate never matches", "allow: {or: [{client_certificate: {fingerprint: " + fp + "}}]}", invalid, false, "client-certificate-unauthorized"},
		{"no CA: nothing verified", "allow: {or: [{client_certificate: {fingerprint: " + fp + "}}]}", noCA, false, "client-certificate-unauthorized"},
		{"no certificate", "allow: {or: [{client_certificate: {fingerprint: " + fp + "}}]}", nil, false, "client-certificate-unauthorized"},
		{"invalid: valid", "allow: {or: [accept: true]}\ndeny: {or: [invalid_client_certificate: true]}", valid, true, "accept"},
		{"invalid: missing", "allow: {or: [accept: true]}\ndeny: {or: [invalid_client_certificate: true]}", nil, false, "client-certificate-required"},
		{"invalid: not presented", "allow: {or: [accept: true]}\ndeny: {or: [invalid_client_certificate: true]}", &ClientCertificate{Valid: false}, false, "client-certificate-required"},
		{"invalid: bad", "allow: {or: [accept: true]}\ndeny: {or: [invalid_client_certificate: true]}", invalid, false, "invalid-client-certificate"},
		{"invalid: no CA", "allow: {or: [accept: true]}\ndeny: {or: [invalid_client_certificate: true]}", noCA, true, "accept"},
		{"not invalid", "allow: {not: [invalid_client_certificate: true]}", valid, true, "valid-client-certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseYAML([]byte(tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			e, err := Compile(Shorthands{}, p)
			if err != nil {
				t.Fatal(err)
			}
			in := req{}.input()
			in.ClientCert = tc.cert
			d := e.Evaluate(in)
			if d.Allow != tc.allow || d.Reasons.String() != tc.reasons || d.NeedsSignIn {
				t.Errorf("allow %v reasons %q signIn %v, want %v %q", d.Allow, d.Reasons, d.NeedsSignIn, tc.allow, tc.reasons)
			}
			if n := testing.AllocsPerRun(100, func() { e.Evaluate(in) }); n != 0 {
				t.Errorf("Evaluate allocates %v times", n)
			}
		})
	}
}

func TestClientCertificateParseErrors(t *testing.T) {
	for src, want := range map[string]string{
		"allow: {or: [{client_certificate: abc}]}":                       "takes a certificate matcher",
		"allow: {or: [{client_certificate: {}}]}":                        "has no condition",
		"allow: {or: [{client_certificate: {fingerprint: xyz}}]}":        "is not a SHA-256 fingerprint",
		"allow: {or: [{client_certificate: {spki_hash: abc}}]}":          "is not a base64 SHA-256 hash",
		"allow: {or: [{client_certificate: {fingerprnt: abc}}]}":         `did you mean "fingerprint"`,
		"allow: {or: [{client_certificate: {san_email: {iss: a@b.c}}}]}": `matcher "iss"`,
	} {
		_, err := ParseYAML([]byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", src, err, want)
		}
	}
}
