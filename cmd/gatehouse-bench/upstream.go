package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// upstreamBody is the fixed 100-byte answer of the bench upstream.
var upstreamBody = []byte(strings.Repeat("gatehouse bench upstream ", 4)) // 25 * 4 = 100 bytes

// upstreamStats are the counters the upstream serves on its stats port.
type upstreamStats struct {
	Requests   int64 `json:"requests"`
	JWTValid   int64 `json:"jwt_valid"`
	JWTInvalid int64 `json:"jwt_invalid"`
	JWTMissing int64 `json:"jwt_missing"`
	// SignatureChecks counts full signature checks: tokens not seen before.
	// Far below JWTValid means gatehouse reuses one JWT per session.
	SignatureChecks int64 `json:"jwt_signature_checks"`
	// EmailValid and EmailInvalid count requests without an identity JWT
	// that carried X-Forwarded-Email (what oauth2-proxy sends upstream for
	// a signed-in user): valid when it is the expected email.
	EmailValid   int64  `json:"forwarded_email_valid"`
	EmailInvalid int64  `json:"forwarded_email_invalid"`
	LastError    string `json:"last_error,omitempty"`
}

// sub returns s - o for the counters (LastError is s's).
func (s upstreamStats) sub(o upstreamStats) upstreamStats {
	return upstreamStats{
		Requests:        s.Requests - o.Requests,
		JWTValid:        s.JWTValid - o.JWTValid,
		JWTInvalid:      s.JWTInvalid - o.JWTInvalid,
		JWTMissing:      s.JWTMissing - o.JWTMissing,
		SignatureChecks: s.SignatureChecks - o.SignatureChecks,
		EmailValid:      s.EmailValid - o.EmailValid,
		EmailInvalid:    s.EmailInvalid - o.EmailInvalid,
		LastError:       s.LastError,
	}
}

// upstream is the bench's fixed upstream: a 100-byte answer to every
// request, and a check of every X-Pomerium-Jwt-Assertion it receives
// against the JWKS the gatehouse systems publish.
type upstream struct {
	jwksURLs []string
	audience string // expected aud host name (port ignored)
	email    string // expected email claim; empty: any
	client   *http.Client
	logger   *slog.Logger

	requests, valid, invalid, missing, sigChecks atomic.Int64
	emailValid, emailInvalid                     atomic.Int64
	lastErr                                      atomic.Pointer[string]

	keysMu      sync.Mutex
	keys        atomic.Pointer[jose.JSONWebKeySet]
	lastRefresh time.Time

	// verified caches tokens whose signature and claims checked out, by
	// their exact text, with their expiry: gatehouse reuses one JWT per
	// session, and a real upstream (Grafana's cache_ttl) caches too. The
	// same bytes carry the same signature, so a hit is as good as a check;
	// expiry is checked on every hit.
	verified     atomic.Pointer[sync.Map]
	verifiedSize atomic.Int64
}

const maxVerifiedCache = 10000

func upstreamCommand(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	addr := fs.String("address", "127.0.0.1:0", "listen address of the upstream")
	statsAddr := fs.String("stats-address", "127.0.0.1:0", "listen address of /stats")
	var jwks multiFlag
	fs.Var(&jwks, "jwks", "JWKS URL to verify X-Pomerium-Jwt-Assertion against (repeatable)")
	aud := fs.String("audience", "bench.localhost", "expected aud host name of the JWT")
	email := fs.String("email", "", "expected email claim of the JWT (empty: any)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u := &upstream{
		jwksURLs: jwks,
		audience: *aud,
		email:    *email,
		client:   localhostClient(nil, 5*time.Second),
		logger:   slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	u.keys.Store(&jose.JSONWebKeySet{})
	u.verified.Store(new(sync.Map))

	ctx, stop := signalContext()
	defer stop()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	slis, err := net.Listen("tcp", *statsAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(u.stats())
	})
	ssrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close(); _ = ssrv.Close() }()
	go func() { _ = ssrv.Serve(slis) }()
	fmt.Printf("upstream listening on %s, stats on %s\n", lis.Addr(), slis.Addr())
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (u *upstream) stats() upstreamStats {
	s := upstreamStats{
		Requests:        u.requests.Load(),
		JWTValid:        u.valid.Load(),
		JWTInvalid:      u.invalid.Load(),
		JWTMissing:      u.missing.Load(),
		SignatureChecks: u.sigChecks.Load(),
		EmailValid:      u.emailValid.Load(),
		EmailInvalid:    u.emailInvalid.Load(),
	}
	if e := u.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// ServeHTTP answers every request with the fixed body after counting its
// identity JWT as valid, invalid or missing. A request without a JWT but
// with X-Forwarded-Email (oauth2-proxy's identity header) is counted by
// that header instead.
func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.requests.Add(1)
	if tok := r.Header.Get("X-Pomerium-Jwt-Assertion"); tok == "" {
		if email := r.Header.Get("X-Forwarded-Email"); email == "" {
			u.missing.Add(1)
		} else if u.email == "" || email == u.email {
			u.emailValid.Add(1)
		} else {
			u.emailInvalid.Add(1)
			msg := fmt.Sprintf("X-Forwarded-Email %q, want %q", email, u.email)
			u.lastErr.Store(&msg)
		}
	} else if err := u.verify(tok, time.Now()); err != nil {
		u.invalid.Add(1)
		msg := err.Error()
		u.lastErr.Store(&msg)
	} else {
		u.valid.Add(1)
	}
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["Content-Length"] = []string{"100"}
	_, _ = w.Write(upstreamBody)
}

// benchClaims are the identity JWT claims the upstream checks.
type benchClaims struct {
	jwt.Claims
	Email string `json:"email"`
}

func (u *upstream) verify(tok string, now time.Time) error {
	m := u.verified.Load()
	if v, ok := m.Load(tok); ok {
		if exp := v.(int64); now.Unix() < exp {
			return nil
		}
		return errors.New("jwt expired")
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.EdDSA})
	if err != nil {
		return fmt.Errorf("parse jwt: %w", err)
	}
	if len(parsed.Headers) != 1 {
		return errors.New("jwt: want one signature")
	}
	kid := parsed.Headers[0].KeyID
	keys := u.keysFor(kid, false)
	if len(keys) == 0 {
		keys = u.keysFor(kid, true)
	}
	if len(keys) == 0 {
		return fmt.Errorf("jwt: no key %q in the JWKS", kid)
	}
	u.sigChecks.Add(1)
	var c benchClaims
	var verr error
	for _, k := range keys {
		if verr = parsed.Claims(k.Key, &c); verr == nil {
			break
		}
	}
	if verr != nil {
		return fmt.Errorf("jwt signature: %w", verr)
	}
	if c.Expiry == nil {
		return errors.New("jwt: no exp")
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Time: now}, 5*time.Second); err != nil {
		return fmt.Errorf("jwt claims: %w", err)
	}
	audOK := false
	for _, a := range c.Audience {
		if h, _, err := net.SplitHostPort(a); err == nil {
			a = h
		}
		if a == u.audience {
			audOK = true
		}
	}
	if !audOK {
		return fmt.Errorf("jwt: aud %v, want %s", []string(c.Audience), u.audience)
	}
	if c.Subject == "" {
		return errors.New("jwt: empty sub")
	}
	if u.email != "" && c.Email != u.email {
		return fmt.Errorf("jwt: email %q, want %q", c.Email, u.email)
	}
	if u.verifiedSize.Add(1) > maxVerifiedCache {
		u.verified.Store(new(sync.Map))
		u.verifiedSize.Store(1)
		m = u.verified.Load()
	}
	m.Store(tok, int64(c.Expiry.Time().Unix()))
	return nil
}

// keysFor returns the keys with id kid (all keys when kid is empty). With
// refresh it first fetches every JWKS URL again, at most once a second.
func (u *upstream) keysFor(kid string, refresh bool) []jose.JSONWebKey {
	if refresh {
		u.keysMu.Lock()
		if time.Since(u.lastRefresh) > time.Second {
			u.lastRefresh = time.Now()
			u.keys.Store(u.fetchKeys())
		}
		u.keysMu.Unlock()
	}
	set := u.keys.Load()
	if kid == "" {
		return set.Keys
	}
	return set.Key(kid)
}

func (u *upstream) fetchKeys() *jose.JSONWebKeySet {
	all := &jose.JSONWebKeySet{}
	for _, url := range u.jwksURLs {
		var set jose.JSONWebKeySet
		if err := u.getJSON(url, &set); err != nil {
			u.logger.Warn("fetch jwks", "url", url, "err", err)
			continue
		}
		all.Keys = append(all.Keys, set.Keys...)
	}
	return all
}

func (u *upstream) getJSON(url string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
