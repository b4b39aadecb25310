package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func newTestKey(t *testing.T, kid string) (jose.Signer, jose.JSONWebKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return sig, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}
}

func TestUpstreamCountsJWTs(t *testing.T) {
	signer, pub := newTestKey(t, "k1")
	otherSigner, _ := newTestKey(t, "k1") // same kid, key not published
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	}))
	defer jwks.Close()

	u := &upstream{jwksURLs: []string{jwks.URL}, audience: "bench.localhost", email: "alice@example.com",
		client: http.DefaultClient, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	u.keys.Store(&jose.JSONWebKeySet{})
	u.verified.Store(new(sync.Map))

	now := time.Now()
	sign := func(s jose.Signer, aud, email string, exp time.Time) string {
		c := benchClaims{Claims: jwt.Claims{Subject: "u1", Audience: jwt.Audience{aud}, Expiry: jwt.NewNumericDate(exp),
			IssuedAt: jwt.NewNumericDate(now)}, Email: email}
		tok, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := sign(signer, "bench.localhost:8443", "alice@example.com", now.Add(time.Minute))
	tests := []struct {
		name  string
		tok   string
		valid bool
	}{
		{"valid", good, true},
		{"valid again (cached)", good, true},
		{"no port in aud", sign(signer, "bench.localhost", "alice@example.com", now.Add(time.Minute)), true},
		{"unpublished key", sign(otherSigner, "bench.localhost", "alice@example.com", now.Add(time.Minute)), false},
		{"expired", sign(signer, "bench.localhost", "alice@example.com", now.Add(-time.Minute)), false},
		{"other audience", sign(signer, "grafana.localhost", "alice@example.com", now.Add(time.Minute)), false},
		{"other email", sign(signer, "bench.localhost", "mallory@example.com", now.Add(time.Minute)), false},
		{"tampered", good[:len(good)-4] + "AAAA", false},
		{"garbage", "not.a.jwt", false},
		{"missing", "", false},
	}
	var wantValid, wantInvalid, wantMissing int64
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if tt.tok != "" {
			req.Header.Set("X-Pomerium-Jwt-Assertion", tt.tok)
		}
		rec := httptest.NewRecorder()
		u.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Body.Len() != 100 {
			t.Fatalf("%s: %d, %d bytes; want 200 and 100 bytes", tt.name, rec.Code, rec.Body.Len())
		}
		switch {
		case tt.tok == "":
			wantMissing++
		case tt.valid:
			wantValid++
		default:
			wantInvalid++
		}
		st := u.stats()
		if st.JWTValid != wantValid || st.JWTInvalid != wantInvalid || st.JWTMissing != wantMissing {
			t.Fatalf("%s: stats %+v, want valid %d invalid %d missing %d", tt.name, st, wantValid, wantInvalid, wantMissing)
		}
	}
	st := u.stats()
	if st.Requests != int64(len(tests)) {
		t.Errorf("requests %d, want %d", st.Requests, len(tests))
	}
	if st.SignatureChecks >= st.JWTValid+st.JWTInvalid {
		t.Errorf("signature checks %d: the repeated valid token was not cached", st.SignatureChecks)
	}
	if !strings.Contains(st.LastError, "jwt") {
		t.Errorf("last error %q, want the last invalid JWT's reason", st.LastError)
	}
}

func TestUpstreamBodyIs100Bytes(t *testing.T) {
	if len(upstreamBody) != 100 {
		t.Fatalf("upstream body is %d bytes, want 100", len(upstreamBody))
	}
}

// An oauth2-proxy request carries no JWT but X-Forwarded-Email: counted
// valid only for the expected email, and a request with neither is missing.
func TestUpstreamCountsForwardedEmail(t *testing.T) {
	u := &upstream{email: "alice@example.com"}
	u.keys.Store(&jose.JSONWebKeySet{})
	u.verified.Store(new(sync.Map))
	for _, email := range []string{"alice@example.com", "mallory@example.com", ""} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if email != "" {
			req.Header.Set("X-Forwarded-Email", email)
		}
		u.ServeHTTP(httptest.NewRecorder(), req)
	}
	s := u.stats()
	if s.EmailValid != 1 || s.EmailInvalid != 1 || s.JWTMissing != 1 || s.Requests != 3 {
		t.Fatalf("stats %+v, want 1 valid, 1 invalid, 1 missing of 3", s)
	}
}
