package grafanatest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// errUnknownKID is returned for a kid that the (cached) key set lacks.
var errUnknownKID = errors.New("no key in the JWKS has this kid")

// keySet finds the verification key for a kid: from a file read once, or
// from a URL fetched lazily and cached as Grafana caches it.
type keySet struct {
	file *jose.JSONWebKeySet // jwk_set_file

	url    string
	ttl    time.Duration
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	cached  *jose.JSONWebKeySet
	expires time.Time
	fetches int
}

func newKeySet(cfg *Config) (*keySet, error) {
	ks := &keySet{url: cfg.JWKSetURL, ttl: cfg.CacheTTL, now: cfg.Now}
	if cfg.JWKSetFile != "" {
		b, err := os.ReadFile(cfg.JWKSetFile)
		if err != nil {
			return nil, fmt.Errorf("grafanatest: jwk_set_file: %w", err)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(b, &set); err != nil {
			return nil, fmt.Errorf("grafanatest: jwk_set_file %s: %w", cfg.JWKSetFile, err)
		}
		ks.file = &set
		return ks, nil
	}
	roots := cfg.RootCAs
	if roots == nil && cfg.TLSClientCA != "" {
		pem, err := os.ReadFile(cfg.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("grafanatest: tls_client_ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("grafanatest: tls_client_ca %s: no PEM certificate", cfg.TLSClientCA)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	ks.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return ks, nil
}

// key returns the keys whose kid is exactly kid. An unknown kid is an
// error and never causes a refetch: only an expired cache does.
func (ks *keySet) key(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	set := ks.file
	if set == nil {
		var err error
		if set, err = ks.fetchIfExpired(ctx); err != nil {
			return nil, err
		}
	}
	keys := set.Key(kid)
	if len(keys) == 0 {
		return nil, errUnknownKID
	}
	return keys, nil
}

func (ks *keySet) fetchIfExpired(ctx context.Context) (*jose.JSONWebKeySet, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := ks.now()
	if ks.cached != nil && now.Before(ks.expires) {
		return ks.cached, nil
	}
	ks.fetches++
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: %s answered %s", ks.url, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	ttl := ks.ttl
	if maxAge, ok := cacheMaxAge(resp.Header.Get("Cache-Control")); ok && maxAge < ttl {
		ttl = maxAge
	}
	ks.cached, ks.expires = &set, now.Add(ttl)
	return ks.cached, nil
}

// fetchCount is how many times the JWKS URL was requested.
func (ks *keySet) fetchCount() int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.fetches
}

// cacheMaxAge reads max-age (no-store and no-cache count as 0).
func cacheMaxAge(cc string) (time.Duration, bool) {
	var (
		d     time.Duration
		found bool
	)
	for _, part := range strings.Split(cc, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		switch {
		case part == "no-store" || part == "no-cache":
			return 0, true
		case strings.HasPrefix(part, "max-age="):
			n, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(part, "max-age="), `"`))
			if err == nil && n >= 0 {
				d, found = time.Duration(n)*time.Second, true
			}
		}
	}
	return d, found
}
