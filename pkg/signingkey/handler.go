package signingkey

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// Well-known paths, as Pomerium serves them.
const (
	// JWKSPath is where the public keys are published.
	JWKSPath = "/.well-known/pomerium/jwks.json"
	// WellKnownPath is where the discovery document is served.
	WellKnownPath = "/.well-known/pomerium"
	// callbackPath is authenticate's OAuth2 callback.
	callbackPath = "/oauth2/callback"
	// signOutPath is the front-channel sign-out page of every host.
	signOutPath = "/.pomerium/sign_out"
)

// JWKSHandler returns an http.Handler that serves the KeySet's JWKS (for
// JWKSPath) to GET and HEAD with Content-Type application/json,
// Access-Control-Allow-Origin *, Cache-Control max-age=60 and a strong ETag;
// a request whose If-None-Match matches gets 304 Not Modified. OPTIONS is
// answered as a CORS preflight; other methods get 405.
func (s *KeySet) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if !allowRead(w, r) {
			return
		}
		h.Set("Cache-Control", "max-age=60")
		h.Set("ETag", s.etag)
		if etagMatch(r.Header.Values("If-None-Match"), s.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusOK)
			return
		}
		_, _ = w.Write(s.jwksJSON)
	})
}

// allowRead sets Access-Control-Allow-Origin * and reports whether r is a
// GET or HEAD to be served. It answers an OPTIONS request as a CORS
// preflight (204) and any other method with 405.
func allowRead(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	}
	return false
}

// etagMatch reports whether an If-None-Match header matches etag, using the
// weak comparison RFC 9110 prescribes for If-None-Match.
func etagMatch(headers []string, etag string) bool {
	for _, h := range headers {
		for tag := range strings.SplitSeq(h, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// WellKnown is the discovery document served at WellKnownPath.
type WellKnown struct {
	// Issuer is the base URL of the host serving the document.
	Issuer string `json:"issuer"`
	// AuthenticationCallbackEndpoint is authenticate's OAuth2 callback.
	AuthenticationCallbackEndpoint string `json:"authentication_callback_endpoint"`
	// JWKSURI is where the host publishes its JWKS.
	JWKSURI string `json:"jwks_uri"`
	// FrontchannelLogoutURI is the host's sign-out page.
	FrontchannelLogoutURI string `json:"frontchannel_logout_uri"`
}

// NewWellKnown returns the discovery document of the host whose base URL is
// hostURL (for example https://grafana.example.com), with authenticateURL
// the base URL of the authenticate service.
func NewWellKnown(authenticateURL, hostURL *url.URL) WellKnown {
	root := hostURL.ResolveReference(&url.URL{Path: "/"})
	return WellKnown{
		Issuer:                         root.String(),
		AuthenticationCallbackEndpoint: authenticateURL.ResolveReference(&url.URL{Path: callbackPath}).String(),
		JWKSURI:                        hostURL.ResolveReference(&url.URL{Path: JWKSPath}).String(),
		FrontchannelLogoutURI:          hostURL.ResolveReference(&url.URL{Path: signOutPath}).String(),
	}
}

// WellKnownHandler returns an http.Handler that serves the discovery
// document (for WellKnownPath) as JSON to GET and HEAD, with
// Access-Control-Allow-Origin *; OPTIONS is answered as a CORS preflight and
// other methods get 405.
// When hostURL is nil, the document describes the host of each request
// (https when the request came over TLS, http otherwise, and r.Host), so one
// handler serves every route host; authenticateURL must not be nil.
func WellKnownHandler(authenticateURL, hostURL *url.URL) http.Handler {
	var fixed []byte
	if hostURL != nil {
		fixed, _ = json.Marshal(NewWellKnown(authenticateURL, hostURL))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowRead(w, r) {
			return
		}
		h := w.Header()
		body := fixed
		if body == nil {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			body, _ = json.Marshal(NewWellKnown(authenticateURL, &url.URL{Scheme: scheme, Host: r.Host}))
		}
		h.Set("Content-Type", "application/json")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
