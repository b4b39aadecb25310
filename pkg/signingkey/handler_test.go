package signingkey

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestJWKSHandler(t *testing.T) {
	t.Parallel()
	s, err := Derive(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := s.JWKSHandler()
	// etagDerived is the ETag of Derive(testSecret)'s JWKS: the first 16
	// bytes of the SHA-256 of its JSON, hex.
	const etagDerived = `"611a385baef97604adc0ac990d8cdf5e"`
	tests := []struct {
		name        string
		method      string
		ifNoneMatch string
		wantStatus  int
		wantBody    bool
	}{
		{"GET", http.MethodGet, "", http.StatusOK, true},
		{"HEAD", http.MethodHead, "", http.StatusOK, false},
		{"matching ETag", http.MethodGet, etagDerived, http.StatusNotModified, false},
		{"weak matching ETag", http.MethodGet, "W/" + etagDerived, http.StatusNotModified, false},
		{"ETag in a list", http.MethodGet, `"abc", ` + etagDerived, http.StatusNotModified, false},
		{"star", http.MethodGet, "*", http.StatusNotModified, false},
		{"stale ETag", http.MethodGet, `"0123"`, http.StatusOK, true},
		{"preflight", http.MethodOptions, "", http.StatusNoContent, false},
		{"POST", http.MethodPost, "", http.StatusMethodNotAllowed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, "https://grafana.example.com"+JWKSPath, nil)
			if tt.ifNoneMatch != "" {
				r.Header.Set("If-None-Match", tt.ifNoneMatch)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			res := w.Result()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q", got)
			}
			if tt.wantStatus == http.StatusOK || tt.wantStatus == http.StatusNotModified {
				if got := res.Header.Get("ETag"); got != etagDerived {
					t.Errorf("ETag = %s, want %s", got, etagDerived)
				}
				if got := res.Header.Get("Cache-Control"); got != "max-age=60" {
					t.Errorf("Cache-Control = %q", got)
				}
			}
			if tt.wantStatus == http.StatusOK {
				if got := res.Header.Get("Content-Type"); got != "application/json" {
					t.Errorf("Content-Type = %q", got)
				}
			}
			if tt.wantBody {
				if w.Body.String() != string(s.JWKSJSON()) {
					t.Fatalf("body = %s", w.Body)
				}
			} else if tt.wantStatus != http.StatusMethodNotAllowed && w.Body.Len() != 0 {
				t.Fatalf("unexpected body %q", w.Body)
			}
		})
	}
}

func TestWellKnownHandler(t *testing.T) {
	t.Parallel()
	authn, _ := url.Parse("https://authenticate.example.com")
	fixedHost, _ := url.Parse("https://grafana.example.com:8443")
	tests := []struct {
		name    string
		host    *url.URL
		request string
		tls     bool
		want    WellKnown
	}{
		{"fixed host", fixedHost, "http://ignored.example.com/.well-known/pomerium", false, WellKnown{
			Issuer:                         "https://grafana.example.com:8443/",
			AuthenticationCallbackEndpoint: "https://authenticate.example.com/oauth2/callback",
			JWKSURI:                        "https://grafana.example.com:8443/.well-known/pomerium/jwks.json",
			FrontchannelLogoutURI:          "https://grafana.example.com:8443/.pomerium/sign_out",
		}},
		{"host from TLS request", nil, "https://route.example.com/.well-known/pomerium", true, WellKnown{
			Issuer:                         "https://route.example.com/",
			AuthenticationCallbackEndpoint: "https://authenticate.example.com/oauth2/callback",
			JWKSURI:                        "https://route.example.com/.well-known/pomerium/jwks.json",
			FrontchannelLogoutURI:          "https://route.example.com/.pomerium/sign_out",
		}},
		{"host from plain request", nil, "http://route.localhost:8080/.well-known/pomerium", false, WellKnown{
			Issuer:                         "http://route.localhost:8080/",
			AuthenticationCallbackEndpoint: "https://authenticate.example.com/oauth2/callback",
			JWKSURI:                        "http://route.localhost:8080/.well-known/pomerium/jwks.json",
			FrontchannelLogoutURI:          "http://route.localhost:8080/.pomerium/sign_out",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, tt.request, nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			} else {
				r.TLS = nil
			}
			w := httptest.NewRecorder()
			WellKnownHandler(authn, tt.host).ServeHTTP(w, r)
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Fatalf("status %d headers %v", w.Code, w.Header())
			}
			var got WellKnown
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	w := httptest.NewRecorder()
	WellKnownHandler(authn, nil).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/.well-known/pomerium", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST status = %d", w.Code)
	}
}

func BenchmarkJWKSHandler(b *testing.B) {
	s, _ := Derive(testSecret)
	h := s.JWKSHandler()
	r := httptest.NewRequest(http.MethodGet, JWKSPath, nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}
