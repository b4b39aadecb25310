package sessionhandle

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testKey is the decoded shared_secret 4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8=
// (bytes 0xe0..0xff).
var testKey = func() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(0xe0 + i)
	}
	return b
}()

// testNow is the fixed time of the vectors, Unix 1767323045.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testHandle() *Handle {
	return &Handle{
		ID:                      "session-1",
		UserID:                  "user-1",
		Issuer:                  "authenticate.example.com",
		Audience:                []string{"grafana.example.com"},
		IssuedAt:                testNow,
		Expiry:                  testNow.Add(14 * time.Hour),
		DatabrokerServerVersion: 7,
		DatabrokerRecordVersion: 42,
	}
}

// handleVector is Encode(testKey, testHandle()), cross-checked with an
// independent HMAC-SHA256 implementation. Its payload is
// {"jti":"session-1","sub":"user-1","iss":"authenticate.example.com","aud":"grafana.example.com","iat":1767323045,"exp":1767373445,"databroker_server_version":7,"databroker_record_version":42}
const handleVector = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
	"eyJqdGkiOiJzZXNzaW9uLTEiLCJzdWIiOiJ1c2VyLTEiLCJpc3MiOiJhdXRoZW50aWNhdGUuZXhhbXBsZS5jb20iLCJhdWQiOiJncmFmYW5hLmV4YW1wbGUuY29tIiwiaWF0IjoxNzY3MzIzMDQ1LCJleHAiOjE3NjczNzM0NDUsImRhdGFicm9rZXJfc2VydmVyX3ZlcnNpb24iOjcsImRhdGFicm9rZXJfcmVjb3JkX3ZlcnNpb24iOjQyfQ." +
	"FmKxOEA0GXcOqdZxRa2Og6lBoaLvjriPUAcYDsE2kaI"

// sign builds a compact JWS from a raw header and payload with a valid
// HS256 signature under key, using crypto/hmac (not the code under test).
func sign(key []byte, header, payload string) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

func TestEncodeVector(t *testing.T) {
	t.Parallel()
	tok, err := Encode(testKey, testHandle())
	if err != nil {
		t.Fatal(err)
	}
	if tok != handleVector {
		t.Fatalf("Encode =\n%s\nwant\n%s", tok, handleVector)
	}
	h, err := Decode(testKey, handleVector, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := testHandle()
	want.IssuedAt, want.Expiry = time.Unix(1767323045, 0), time.Unix(1767373445, 0)
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("Decode =\n%+v\nwant\n%+v", h, want)
	}
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	if _, err := Encode(testKey[:31], testHandle()); err == nil {
		t.Error("short key: no error")
	}
	if _, err := Encode(testKey, &Handle{UserID: "u"}); err == nil {
		t.Error("no session id: no error")
	}
	if _, err := Encode(testKey, nil); err == nil {
		t.Error("nil handle: no error")
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	const payload = `{"jti":"s","sub":"u","exp":1767323105}` // exp = testNow + 60s
	otherKey := []byte(strings.Repeat("k", 32))
	flipLast := func(s string) string {
		if s[len(s)-1] == 'A' {
			return s[:len(s)-1] + "B"
		}
		return s[:len(s)-1] + "A"
	}
	jose := func(h *Handle) string {
		tok, err := Encode(testKey, h)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name    string
		key     []byte
		token   string
		now     time.Time
		want    *Handle // nil: compare only the error
		wantErr error
	}{
		{"vector", testKey, handleVector, testNow, nil, nil},
		{"bare header", testKey, sign(testKey, `{"alg":"HS256"}`, payload), testNow,
			&Handle{ID: "s", UserID: "u", Expiry: time.Unix(1767323105, 0)}, nil},
		{"other header spelling (slow path)", testKey, sign(testKey, `{"typ":"JWT", "kid":"x", "alg":"HS256"}`, payload), testNow, nil, nil},
		{"aud list, idp_id, nbf, float iat", testKey,
			sign(testKey, `{"alg":"HS256","typ":"JWT"}`, `{"jti":"s","aud":["a","b"],"idp_id":"idp","nbf":1767323000,"iat":1767323000.75}`), testNow,
			&Handle{ID: "s", Audience: []string{"a", "b"}, IdentityProviderID: "idp", NotBefore: time.Unix(1767323000, 0), IssuedAt: time.Unix(1767323000, 0)}, nil},
		{"null and empty optional claims", testKey,
			sign(testKey, `{"alg":"HS256"}`, `{"jti":"s","aud":[],"exp":null,"sub":null}`), testNow, &Handle{ID: "s"}, nil},
		{"no exp never expires", testKey, sign(testKey, `{"alg":"HS256"}`, `{"jti":"s"}`), testNow.Add(100 * 365 * 24 * time.Hour), &Handle{ID: "s"}, nil},
		{"within skew after exp", testKey, sign(testKey, `{"alg":"HS256"}`, payload), testNow.Add(60*time.Second + ClockSkew - time.Second), nil, nil},
		{"expired", testKey, sign(testKey, `{"alg":"HS256"}`, payload), testNow.Add(60*time.Second + ClockSkew), nil, ErrExpired},
		{"vector expired", testKey, handleVector, testNow.Add(15 * time.Hour), nil, ErrExpired},
		{"nbf in the future", testKey, sign(testKey, `{"alg":"HS256"}`, `{"jti":"s","nbf":1767323300}`), testNow, nil, ErrInvalid},
		{"wrong key", otherKey, handleVector, testNow, nil, ErrInvalid},
		{"signature modified", testKey, flipLast(handleVector), testNow, nil, ErrInvalid},
		{"payload modified", testKey, strings.Replace(handleVector, ".eyJqdGkiOiJzZXNzaW9uLTEi", ".eyJqdGkiOiJzZXNzaW9uLTIi", 1), testNow, nil, ErrInvalid},
		// 'J' differs from the vector's final 'I' only in the two unused bits.
		{"signature non-canonical base64", testKey, strings.TrimSuffix(handleVector, "I") + "J", testNow, nil, ErrInvalid},
		{"signature padded", testKey, handleVector + "=", testNow, nil, ErrInvalid},
		{"signature missing", testKey, handleVector[:strings.LastIndexByte(handleVector, '.')+1], testNow, nil, ErrInvalid},
		{"alg none unsigned", testKey, sign(testKey, `{"alg":"none"}`, payload)[:len(sign(testKey, `{"alg":"none"}`, payload))-43], testNow, nil, ErrInvalid},
		{"alg none with a valid MAC", testKey, sign(testKey, `{"alg":"none"}`, payload), testNow, nil, ErrInvalid},
		{"alg HS512 with an HS256 MAC", testKey, sign(testKey, `{"alg":"HS512"}`, payload), testNow, nil, ErrInvalid},
		{"alg RS256 with an HS256 MAC", testKey, sign(testKey, `{"alg":"RS256","typ":"JWT"}`, payload), testNow, nil, ErrInvalid},
		{"alg lower case", testKey, sign(testKey, `{"alg":"hs256"}`, payload), testNow, nil, ErrInvalid},
		{"no alg", testKey, sign(testKey, `{"typ":"JWT"}`, payload), testNow, nil, ErrInvalid},
		{"crit header", testKey, sign(testKey, `{"alg":"HS256","crit":["exp"],"exp":1}`, payload), testNow, nil, ErrInvalid},
		{"b64 header", testKey, sign(testKey, `{"alg":"HS256","b64":false}`, payload), testNow, nil, ErrInvalid},
		{"header not JSON", testKey, sign(testKey, `alg=HS256`, payload), testNow, nil, ErrInvalid},
		{"payload not JSON", testKey, sign(testKey, `{"alg":"HS256"}`, `jti=s`), testNow, nil, ErrInvalid},
		{"payload JSON list", testKey, sign(testKey, `{"alg":"HS256"}`, `["s"]`), testNow, nil, ErrInvalid},
		{"no session id", testKey, sign(testKey, `{"alg":"HS256"}`, `{"sub":"u"}`), testNow, nil, ErrInvalid},
		{"exp a string", testKey, sign(testKey, `{"alg":"HS256"}`, `{"jti":"s","exp":"1767323105"}`), testNow, nil, ErrInvalid},
		{"exp huge", testKey, sign(testKey, `{"alg":"HS256"}`, `{"jti":"s","exp":1e300}`), testNow, nil, ErrInvalid},
		{"version negative", testKey, sign(testKey, `{"alg":"HS256"}`, `{"jti":"s","databroker_record_version":-1}`), testNow, nil, ErrInvalid},
		{"empty", testKey, "", testNow, nil, ErrInvalid},
		{"one part", testKey, "abc", testNow, nil, ErrInvalid},
		{"two parts", testKey, "abc.def", testNow, nil, ErrInvalid},
		{"four parts", testKey, handleVector + ".x", testNow, nil, ErrInvalid},
		{"too long", testKey, sign(testKey, `{"alg":"HS256"}`, `{"jti":"`+strings.Repeat("s", MaxTokenSize)+`"}`), testNow, nil, ErrInvalid},
		{"large but allowed payload", testKey, sign(testKey, `{"alg":"HS256"}`, `{"jti":"`+strings.Repeat("s", 2000)+`"}`), testNow, nil, nil},
		{"round trip of several audiences", testKey, jose(&Handle{ID: "s", Audience: []string{"a", "b"}}), testNow, &Handle{ID: "s", Audience: []string{"a", "b"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := Decode(tt.key, tt.token, tt.now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || h != nil {
					t.Fatalf("Decode = %+v, %v; want %v", h, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if tt.want != nil && !reflect.DeepEqual(h, tt.want) {
				t.Fatalf("Decode =\n%+v\nwant\n%+v", h, tt.want)
			}
		})
	}
}

func TestDecodeShortKey(t *testing.T) {
	t.Parallel()
	_, err := Decode(testKey[:31], handleVector, testNow)
	if err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("Decode with a short key = %v; want a key error", err)
	}
}

// TestDecodeGoJoseToken checks interoperability: a handle written by
// go-jose's jwt package, as Pomerium writes them, decodes.
func TestDecodeGoJoseToken(t *testing.T) {
	t.Parallel()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: testKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{
		ID:       "session-1",
		Subject:  "user-1",
		Issuer:   "authenticate.example.com",
		Audience: jwt.Audience{"grafana.example.com"},
		IssuedAt: jwt.NewNumericDate(testNow),
		Expiry:   jwt.NewNumericDate(testNow.Add(time.Hour)),
	}).Claims(map[string]any{"databroker_server_version": 7, "databroker_record_version": 42}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	h, err := Decode(testKey, tok, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := &Handle{
		ID: "session-1", UserID: "user-1", Issuer: "authenticate.example.com", Audience: []string{"grafana.example.com"},
		IssuedAt: time.Unix(testNow.Unix(), 0), Expiry: time.Unix(testNow.Add(time.Hour).Unix(), 0),
		DatabrokerServerVersion: 7, DatabrokerRecordVersion: 42,
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("Decode =\n%+v\nwant\n%+v", h, want)
	}
	// And the other way: go-jose verifies what Encode writes.
	parsed, err := jwt.ParseSigned(handleVector, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	if err := parsed.Claims(testKey, &c); err != nil {
		t.Fatal(err)
	}
	if c.ID != "session-1" || c.Subject != "user-1" {
		t.Fatalf("go-jose read %+v", c)
	}
}

func TestHMACSHA256(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		key []byte
		msg string
	}{
		{testKey, ""},
		{testKey, "abc"},
		{[]byte(strings.Repeat("k", 64)), "block-sized key"},
		{[]byte(strings.Repeat("k", 65)), "key longer than a block is hashed first"},
		{testKey, strings.Repeat("m", MaxTokenSize)},
	} {
		var got [32]byte
		hmacSHA256(&got, tt.key, tt.msg)
		m := hmac.New(sha256.New, tt.key)
		m.Write([]byte(tt.msg))
		if !hmac.Equal(got[:], m.Sum(nil)) {
			t.Errorf("hmacSHA256(%d-byte key, %d-byte msg) differs from crypto/hmac", len(tt.key), len(tt.msg))
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(testKey, handleVector, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBadSignature(b *testing.B) {
	tok := handleVector[:len(handleVector)-2] + "AA"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(testKey, tok, testNow); err == nil {
			b.Fatal("no error")
		}
	}
}

// BenchmarkDecodeGoJose is the go-jose jwt equivalent of Decode, kept for
// comparison.
func BenchmarkDecodeGoJose(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		tok, err := jwt.ParseSigned(handleVector, []jose.SignatureAlgorithm{jose.HS256})
		if err != nil {
			b.Fatal(err)
		}
		var c struct {
			jwt.Claims
			ServerVersion uint64 `json:"databroker_server_version"`
			RecordVersion uint64 `json:"databroker_record_version"`
		}
		if err := tok.Claims(testKey, &c); err != nil {
			b.Fatal(err)
		}
		if err := c.ValidateWithLeeway(jwt.Expected{Time: testNow}, ClockSkew); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	h := testHandle()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(testKey, h); err != nil {
			b.Fatal(err)
		}
	}
}
