package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
)

// authenticate_internal_service_url is not ignored: requests for its host
// reach the authenticate service, as those for authenticate_service_url.
func TestAuthenticateInternalHostGoesToAuthenticate(t *testing.T) {
	cfg := configtest.New().Set("authenticate_service_url", "https://authenticate.example.com").
		Set("authenticate_internal_service_url", "http://authenticate.internal:8080").
		IdP("http://127.0.0.1:1", "secret").Config(t)
	who := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(name)) })
	}
	h := splitByHost(cfg.IsAuthenticateHost, who("authenticate"), who("proxy"))
	for host, want := range map[string]string{
		"authenticate.example.com":      "authenticate",
		"authenticate.internal:8080":    "authenticate",
		"AUTHENTICATE.INTERNAL":         "authenticate",
		"app.example.com":               "proxy",
		"authenticate.internal.example": "proxy",
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Host = host
		h.ServeHTTP(rec, req)
		if rec.Body.String() != want {
			t.Errorf("%s went to %s, want %s", host, rec.Body.String(), want)
		}
	}
}
