package signingkey

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Fixed test keys (generated once with openssl, see testdata/) and their
// kids, cross-checked with an independent RFC 7638 implementation.
const (
	kidEC256  = "7f6a96e1aae35853866af1af9e5ce254adbc632e3977e75d718380971e138dad" // testdata/ec256.sec1.pem
	kidEC256b = "752b763572089b7b9b6186d8f9696fb1062e01342bf831f8b7d189e7013faa4b" // testdata/ec256b.sec1.pem
	kidEC384  = "24f4c0373578fbda52c64e0f3ab3b2220f5a8c7ee172a25e57455ca171372bae" // testdata/ec384.pkcs8.pem
	kidRSA    = "f6ec31161bbaafe04f82edc52911d0bfb90b06e92957815d5935a719d2ff017f" // testdata/rsa2048.pkcs{1,8}.pem

	// kidDerived is the kid of Derive(testSecret).
	kidDerived = "cf61601af1995031837fedfcd2a3662789447f8ea6c7e4bfbe43c129f1adbbb4"
	// scalarDerived is the private scalar of Derive(testSecret), hex.
	scalarDerived = "3907dfa9416d41a48a9b27b32b9efeb296efa22c677fe6bde82bceb1a72094f9"
)

// testSecret is the decoded shared_secret 4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8=
// (bytes 0xe0..0xff).
var testSecret = func() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(0xe0 + i)
	}
	return b
}()

// testNow is the fixed time of the claim vectors, Unix 1767323045.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func readPEM(t testing.TB, names ...string) string {
	t.Helper()
	var sb strings.Builder
	for _, n := range names {
		b, err := os.ReadFile("testdata/" + n)
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(b)
	}
	return sb.String()
}

func kids(s *KeySet) []string {
	var out []string
	for _, k := range s.JWKS().Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		data     func(t testing.TB) string
		wantAlg  jose.SignatureAlgorithm
		wantKids []string
	}{
		{"EC P-256 SEC 1 with EC PARAMETERS", func(t testing.TB) string { return readPEM(t, "ec256.sec1.pem") }, jose.ES256, []string{kidEC256}},
		{"EC P-384 PKCS #8", func(t testing.TB) string { return readPEM(t, "ec384.pkcs8.pem") }, jose.ES384, []string{kidEC384}},
		{"RSA PKCS #1", func(t testing.TB) string { return readPEM(t, "rsa2048.pkcs1.pem") }, jose.RS256, []string{kidRSA}},
		{"RSA PKCS #8", func(t testing.TB) string { return readPEM(t, "rsa2048.pkcs8.pem") }, jose.RS256, []string{kidRSA}},
		{"base64 of PEM", func(t testing.TB) string {
			return base64.StdEncoding.EncodeToString([]byte(readPEM(t, "ec256.sec1.pem")))
		}, jose.ES256, []string{kidEC256}},
		{"raw base64url of PEM", func(t testing.TB) string {
			return base64.RawURLEncoding.EncodeToString([]byte(readPEM(t, "rsa2048.pkcs1.pem")))
		}, jose.RS256, []string{kidRSA}},
		{"several keys: first signs, all published", func(t testing.TB) string {
			return readPEM(t, "ec256b.sec1.pem", "rsa2048.pkcs8.pem", "ec256.sec1.pem")
		}, jose.ES256, []string{kidEC256b, kidRSA, kidEC256}},
		{"RSA first", func(t testing.TB) string { return readPEM(t, "rsa2048.pkcs1.pem", "ec256.sec1.pem") }, jose.RS256, []string{kidRSA, kidEC256}},
		{"duplicate published once", func(t testing.TB) string {
			return readPEM(t, "rsa2048.pkcs1.pem", "ec256.sec1.pem", "rsa2048.pkcs8.pem")
		}, jose.RS256, []string{kidRSA, kidEC256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(tt.data(t))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if s.Algorithm() != tt.wantAlg {
				t.Errorf("Algorithm = %s, want %s", s.Algorithm(), tt.wantAlg)
			}
			if s.KeyID() != tt.wantKids[0] {
				t.Errorf("KeyID = %s, want %s", s.KeyID(), tt.wantKids[0])
			}
			if got := strings.Join(kids(s), ","); got != strings.Join(tt.wantKids, ",") {
				t.Errorf("published kids = %s, want %s", got, strings.Join(tt.wantKids, ","))
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	ec := readPEM(t, "ec256b.sec1.pem")
	tests := []struct {
		name    string
		data    string
		wantErr string
	}{
		{"empty", "", "empty"},
		{"not PEM nor base64", "hello world!", "neither PEM nor base64"},
		{"base64 of non-PEM", base64.StdEncoding.EncodeToString([]byte("just text")), "no PEM private key"},
		{"only EC PARAMETERS", "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n", "no PEM private key"},
		{"public key", "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEkCuzTjrFub0b6mzyipgVSH0C4H0f\nbTBscqGyX+HtfJfrXrI2OGqc1tN0L+b5c6v6YxRKkEMnw1yRqT7yfKAoDg==\n-----END PUBLIC KEY-----\n", "not a private key"},
		{"corrupt DER", "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", "parse SEC 1 key"},
		{"SEC 1 label on RSA", strings.ReplaceAll(readPEM(t, "rsa2048.pkcs1.pem"), "RSA PRIVATE KEY", "EC PRIVATE KEY"), "parse SEC 1 key"},
		{"RSA too small", readPEM(t, "rsa1024.pem"), "1024 bits"},
		{"Ed25519", readPEM(t, "ed25519.pem"), "unsupported key type"},
		{"bad second block", ec + "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "PEM block 2"},
		{"truncated second block", ec + "-----BEGIN PRIVATE KEY-----\nMIIEvQ", "malformed PEM block"},
		{"encrypted", "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAA\n-----END EC PRIVATE KEY-----\n", "encrypted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse = %v, %v; want error containing %q", s, err, tt.wantErr)
			}
		})
	}
}

func TestDerive(t *testing.T) {
	t.Parallel()
	s, err := Derive(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != kidDerived {
		t.Fatalf("Derive(testSecret).KeyID() = %s, want %s", s.KeyID(), kidDerived)
	}
	if s.Algorithm() != jose.ES256 {
		t.Fatalf("Algorithm = %s", s.Algorithm())
	}
	d, err := s.keys[0].private.(interface{ Bytes() ([]byte, error) }).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if got := hexString(d); got != scalarDerived {
		t.Fatalf("scalar = %s, want %s", got, scalarDerived)
	}
	again, _ := Derive(append([]byte(nil), testSecret...))
	if again.KeyID() != kidDerived {
		t.Fatal("Derive is not deterministic")
	}
	other, _ := Derive(make([]byte, 32))
	if other.KeyID() == kidDerived {
		t.Fatal("different secrets derived the same key")
	}
	if _, err := Derive(nil); err == nil {
		t.Fatal("Derive(nil): no error")
	}
}

// verify checks token against the JWKS as an upstream would: from the
// published JSON, by kid.
func verify(t testing.TB, s *KeySet, token string) (jose.Header, IdentityClaims) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKSJSON(), &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256})
	if err != nil {
		t.Fatalf("ParseSigned: %v", err)
	}
	hdr := jws.Signatures[0].Header
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q matches %d published keys", hdr.KeyID, len(keys))
	}
	if keys[0].Algorithm != hdr.Algorithm || keys[0].Use != "sig" {
		t.Fatalf("published key alg/use = %s/%s, header alg %s", keys[0].Algorithm, keys[0].Use, hdr.Algorithm)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var c IdentityClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return hdr, c
}

func testClaims() IdentityClaims {
	c := IdentityClaims{
		Issuer:    "grafana.example.com",
		Audience:  "grafana.example.com",
		Subject:   "user-1",
		User:      "user-1",
		Email:     "ada@example.com",
		Name:      "Ada Lovelace",
		Groups:    []string{"admins", "eng"},
		SessionID: "session-1",
		ID:        "jwt-1",
	}
	c.SetTimes(testNow)
	return c
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		keys    func(t testing.TB) (*KeySet, error)
		wantAlg string
		wantKid string
	}{
		{"ES256", func(t testing.TB) (*KeySet, error) { return Parse(readPEM(t, "ec256.sec1.pem")) }, "ES256", kidEC256},
		{"ES384", func(t testing.TB) (*KeySet, error) { return Parse(readPEM(t, "ec384.pkcs8.pem")) }, "ES384", kidEC384},
		{"RS256", func(t testing.TB) (*KeySet, error) { return Parse(readPEM(t, "rsa2048.pkcs1.pem")) }, "RS256", kidRSA},
		{"derived ES256", func(testing.TB) (*KeySet, error) { return Derive(testSecret) }, "ES256", kidDerived},
		{"second of several", func(t testing.TB) (*KeySet, error) {
			return Parse(readPEM(t, "rsa2048.pkcs8.pem", "ec256.sec1.pem"))
		}, "RS256", kidRSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := tt.keys(t)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sign(testClaims())
			if err != nil {
				t.Fatal(err)
			}
			hdr, got := verify(t, s, tok)
			if hdr.Algorithm != tt.wantAlg || hdr.KeyID != tt.wantKid || hdr.ExtraHeaders["typ"] != "JWT" {
				t.Fatalf("header = alg %s kid %s typ %v; want %s %s JWT", hdr.Algorithm, hdr.KeyID, hdr.ExtraHeaders["typ"], tt.wantAlg, tt.wantKid)
			}
			want := testClaims()
			if got.Email != want.Email || got.Expiry != want.Expiry || strings.Join(got.Groups, ",") != "admins,eng" {
				t.Fatalf("claims = %+v", got)
			}
		})
	}
}

// rs256Vector is testClaims() signed by testdata/rsa2048.pkcs1.pem. RS256
// (PKCS #1 v1.5) is deterministic, so the whole token is a fixed vector; it
// was cross-checked with an independent JWS implementation.
const rs256Vector = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImY2ZWMzMTE2MWJiYWFmZTA0ZjgyZWRjNTI5MTFkMGJmYjkwYjA2ZTkyOTU3ODE1ZDU5MzVhNzE5ZDJmZjAxN2YiLCJ0eXAiOiJKV1QifQ." +
	"eyJpc3MiOiJncmFmYW5hLmV4YW1wbGUuY29tIiwiYXVkIjoiZ3JhZmFuYS5leGFtcGxlLmNvbSIsInN1YiI6InVzZXItMSIsInVzZXIiOiJ1c2VyLTEiLCJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSIsIm5hbWUiOiJBZGEgTG92ZWxhY2UiLCJncm91cHMiOlsiYWRtaW5zIiwiZW5nIl0sInNpZCI6InNlc3Npb24tMSIsImp0aSI6Imp3dC0xIiwiaWF0IjoxNzY3MzIzMDQ1LCJleHAiOjE3NjczMjMzNDV9." +
	"Q3Cpwz7Vnsr2L14BMfTI5djZTfkKJceC-wd7FnDe6X9zn_0l8ip8rjBSviHkP9BcS-tl_CNEjHb-83EXqz11NZNI2LJpj2OFOz5Ol6TE7SV2AS_3nUGLo6LKfk7D7LW_OHkkowzBDbjQDxkV59NNsov_5bRXnPYpgmeT_IhoWgMxgrKJrPP7638XOUdo_fAbOrnwX1u8jDMmiYUNO8HGLP6fsFpme7K1H2vHYHt7P_ebrXSWZkcAMEA2L-ClbN6X6leimpgsYJP6gndtzDcHLnFCTfBLgYLnDqCGCCdrywlgNsCwkSTjWzkLDkYfVfLc3s9wF8F_sjpElZRiIoc5YQ"

func TestSignRS256Vector(t *testing.T) {
	t.Parallel()
	s, err := Parse(readPEM(t, "rsa2048.pkcs1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	if tok != rs256Vector {
		t.Fatalf("Sign =\n%s\nwant\n%s", tok, rs256Vector)
	}
}

func TestSignRejectsOtherKeys(t *testing.T) {
	t.Parallel()
	a, _ := Parse(readPEM(t, "ec256.sec1.pem"))
	b, _ := Parse(readPEM(t, "ec256b.sec1.pem"))
	tok, _ := a.Sign(testClaims())
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(b.JWKS().Keys[0]); err == nil {
		t.Fatal("token verified with another key")
	}
}

func TestSignMarshalError(t *testing.T) {
	t.Parallel()
	s, _ := Derive(testSecret)
	if _, err := s.Sign(map[string]any{"bad": func() {}}); err == nil {
		t.Fatal("Sign of unmarshallable claims: no error")
	}
}

func TestKeySetConcurrent(t *testing.T) {
	t.Parallel()
	s, _ := Derive(testSecret)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				tok, err := s.Sign(testClaims())
				if err != nil {
					t.Error(err)
					return
				}
				verify(t, s, tok)
				_ = s.JWKS()
			}
		})
	}
	wg.Wait()
}

func TestJWKSJSON(t *testing.T) {
	t.Parallel()
	s, _ := Derive(testSecret)
	const want = `{"keys":[{"use":"sig","kty":"EC","kid":"` + kidDerived + `","crv":"P-256","alg":"ES256","x":"stsobySUgW818OX4rd6_3V3oLjIwbNcZhQiw9ELDMhI","y":"rrH13wfE17djkZK42s7AjGD55abMDnoyInwHh04hD6g"}]}`
	if got := string(s.JWKSJSON()); got != want {
		t.Fatalf("JWKSJSON =\n%s\nwant\n%s", got, want)
	}
	if &s.JWKSJSON()[0] != &s.JWKSJSON()[0] {
		t.Fatal("JWKSJSON is not cached")
	}
	// JWKS returns a copy of the slice.
	set := s.JWKS()
	set.Keys[0].KeyID = "changed"
	if s.JWKS().Keys[0].KeyID != kidDerived {
		t.Fatal("JWKS exposes the KeySet's slice")
	}
}

func BenchmarkSignES256(b *testing.B) {
	s, err := Derive(testSecret)
	if err != nil {
		b.Fatal(err)
	}
	c := testClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRS256(b *testing.B) {
	s, err := Parse(readPEM(b, "rsa2048.pkcs1.pem"))
	if err != nil {
		b.Fatal(err)
	}
	c := testClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}
