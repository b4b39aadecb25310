package clientcert_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/clientcert"
	"github.com/gatehouse/gatehouse/pkg/clientcert/clientcerttest"
)

func TestVerifier(t *testing.T) {
	ca := clientcerttest.NewCA(t, "clients")
	other := clientcerttest.NewCA(t, "other")
	inter := ca.Intermediate(t, "clients intermediate")
	valid := ca.Issue(t, clientcerttest.ClientOptions{CommonName: "ann", Emails: []string{"ann@example.com"}, URIs: []string{"spiffe://example.com/ann"}})
	expired := ca.Issue(t, clientcerttest.ClientOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	revoked := ca.Issue(t, clientcerttest.ClientOptions{CommonName: "revoked"})
	wrongCA := other.Issue(t, clientcerttest.ClientOptions{})
	bob := ca.Issue(t, clientcerttest.ClientOptions{Emails: []string{"bob@elsewhere.org"}})
	deep := inter.Issue(t, clientcerttest.ClientOptions{Emails: []string{"deep@example.com"}})

	email, err := clientcert.NewSANMatcher("email", `.*@example\.com`)
	if err != nil {
		t.Fatal(err)
	}
	v, err := clientcert.New(clientcert.Options{CA: ca.PEM(), CRL: ca.CRL(t, revoked.Cert), SANs: []clientcert.SANMatcher{email}, MaxVerifyDepth: 1})
	if err != nil {
		t.Fatal(err)
	}
	deeper, err := clientcert.New(clientcert.Options{CA: ca.PEM(), MaxVerifyDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tc := range []struct {
		name   string
		v      *clientcert.Verifier
		c      *clientcerttest.Client
		reason string // "" for valid
	}{
		{"valid", v, valid, ""},
		{"expired", v, expired, "expired"},
		{"revoked", v, revoked, "revoked by the CRL"},
		{"wrong CA", v, wrongCA, "unknown authority"},
		{"SAN mismatch", v, bob, "match_subject_alt_names"},
		{"too deep", v, deep, "max_verify_depth 1"},
		{"deep allowed", deeper, deep, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := clientcert.Encode(tc.c.ChainCerts())
			for range 2 { // the second answer comes from the cache
				got, reason := tc.v.Check(s, now)
				if !got.Presented || got.Fingerprint != clientcert.Fingerprint(tc.c.Cert) {
					t.Fatalf("got %+v", got)
				}
				if tc.reason == "" {
					if !got.Valid || !got.Verified || reason != "" {
						t.Errorf("valid %v verified %v reason %q, want valid", got.Valid, got.Verified, reason)
					}
				} else if got.Valid || got.Verified || !strings.Contains(reason, tc.reason) {
					t.Errorf("valid %v verified %v reason %q, want a reason with %q", got.Valid, got.Verified, reason, tc.reason)
				}
			}
			if err := tc.v.VerifyChain(tc.c.ChainCerts(), now); (err == nil) != (tc.reason == "") {
				t.Errorf("VerifyChain: %v", err)
			}
		})
	}
	if got, reason := v.Check("", now); got.Presented || got.Valid || reason == "" {
		t.Errorf("no certificate: %+v %q", got, reason)
	}
	if got, _ := v.Check("%%%garbage", now); !got.Presented || got.Valid {
		t.Errorf("garbage: %+v", got)
	}
	// A valid answer is not kept past the certificate's expiry.
	s := clientcert.Encode(valid.ChainCerts())
	if got, reason := v.Check(s, valid.Cert.NotAfter.Add(time.Second)); got.Valid {
		t.Errorf("valid after expiry: %q", reason)
	}
}

func TestNewErrors(t *testing.T) {
	ca := clientcerttest.NewCA(t, "clients")
	other := clientcerttest.NewCA(t, "clients") // same name, other key
	for _, tc := range []struct {
		o    clientcert.Options
		want string
	}{
		{clientcert.Options{CA: []byte("nope")}, "ca: no PEM certificate"},
		{clientcert.Options{CA: ca.PEM(), CRL: []byte("nope")}, "crl: no certificate revocation list"},
		{clientcert.Options{CA: ca.PEM(), CRL: ca.PEM()}, `crl: found a "CERTIFICATE" PEM block`},
		{clientcert.Options{CA: ca.PEM(), CRL: other.CRL(t)}, "not signed by that CA's key"},
	} {
		if _, err := clientcert.New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
	if _, err := clientcert.NewSANMatcher("phone", "x"); err == nil {
		t.Error("unknown SAN type accepted")
	}
	if _, err := clientcert.NewSANMatcher("dns", "("); err == nil {
		t.Error("bad pattern accepted")
	}
}
