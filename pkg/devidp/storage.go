package devidp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	// authRequestTTL bounds how long a sign-in may sit on the login page.
	authRequestTTL = 30 * time.Minute
	// codeTTL bounds how long an authorization code may wait for exchange.
	codeTTL = 5 * time.Minute
	// sweepEvery is how often, at most, expired records are purged (on a
	// write; there is no background goroutine).
	sweepEvery = time.Minute
)

// errNotFound is a storage miss; op turns it into the right protocol error.
var errNotFound = errors.New("devidp: not found")

// authRequest is one authorization request, from /authorize to the token
// exchange. Values handed to op are copies, so op never sees a write.
type authRequest struct {
	id            string
	created       time.Time
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	loginHint     string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge

	done     bool
	authTime time.Time
	user     identity
	code     string
	codeAt   time.Time
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return nil }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.user.Subject }
func (a *authRequest) Done() bool                            { return a.done }

func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	return &c
}

// accessToken is the server side of an opaque bearer access token.
type accessToken struct {
	id           string
	clientID     string
	user         identity
	scopes       []string
	audience     []string
	expires      time.Time
	refreshToken string // the refresh token it was issued with, if any
}

// refreshToken is a refresh token; its value is also its id. It is not
// rotated: a refresh returns the same refresh token until it expires or is
// revoked.
type refreshToken struct {
	token    string
	clientID string
	user     identity
	scopes   []string
	audience []string
	authTime time.Time
	expires  time.Time
}

// refreshTokenRequest is what op gets back for a refresh token.
type refreshTokenRequest struct {
	token    string
	clientID string
	user     identity
	scopes   []string
	audience []string
	authTime time.Time
}

var _ op.RefreshTokenRequest = (*refreshTokenRequest)(nil)

func (r *refreshTokenRequest) GetAMR() []string            { return nil }
func (r *refreshTokenRequest) GetAudience() []string       { return r.audience }
func (r *refreshTokenRequest) GetAuthTime() time.Time      { return r.authTime }
func (r *refreshTokenRequest) GetClientID() string         { return r.clientID }
func (r *refreshTokenRequest) GetScopes() []string         { return r.scopes }
func (r *refreshTokenRequest) GetSubject() string          { return r.user.Subject }
func (r *refreshTokenRequest) SetCurrentScopes(s []string) { r.scopes = s }

// signingKey is the RSA key that signs ID tokens, generated at start.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ *signingKey }

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// storage is a compact in-memory op.Storage for one client. It is safe for
// concurrent use.
type storage struct {
	client          *client
	key             *signingKey
	accessTokenTTL  time.Duration
	refreshTokenTTL time.Duration
	now             func() time.Time
	rejectRefresh   atomic.Bool

	mu            sync.Mutex
	authRequests  map[string]*authRequest // by id
	codes         map[string]string       // code -> auth request id
	accessTokens  map[string]*accessToken // by id
	refreshTokens map[string]*refreshToken
	users         map[string]identity // by subject, the latest sign-in
	lastSweep     time.Time
}

var (
	_ op.Storage                   = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest = (*storage)(nil)
)

func newStorage(c *client, cfg *Config) (*storage, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("devidp: generate signing key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: &key.PublicKey}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("devidp: key thumbprint: %w", err)
	}
	return &storage{
		client:          c,
		key:             &signingKey{id: base64.RawURLEncoding.EncodeToString(thumb), key: key},
		accessTokenTTL:  cfg.AccessTokenTTL,
		refreshTokenTTL: cfg.RefreshTokenTTL,
		now:             time.Now,
		authRequests:    map[string]*authRequest{},
		codes:           map[string]string{},
		accessTokens:    map[string]*accessToken{},
		refreshTokens:   map[string]*refreshToken{},
		users:           map[string]identity{},
	}, nil
}

// randomID returns 32 random bytes, base64url-encoded.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sweepLocked drops expired records, at most once per sweepEvery.
func (s *storage) sweepLocked() {
	now := s.now()
	if now.Sub(s.lastSweep) < sweepEvery {
		return
	}
	s.lastSweep = now
	for id, a := range s.authRequests {
		if now.Sub(a.created) > authRequestTTL {
			delete(s.authRequests, id)
			if a.code != "" {
				delete(s.codes, a.code)
			}
		}
	}
	for id, t := range s.accessTokens {
		if now.After(t.expires) {
			delete(s.accessTokens, id)
		}
	}
	for id, t := range s.refreshTokens {
		if now.After(t.expires) {
			delete(s.refreshTokens, id)
		}
	}
}

// CreateAuthRequest stores a validated authorization request. Refresh
// tokens are always issued: offline_access is added to the scopes when the
// client did not ask for it.
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired().WithDescription("the dev IdP keeps no sessions; every sign-in shows the login form")
	}
	scopes := slices.Clone(req.Scopes)
	if !slices.Contains(scopes, oidc.ScopeOfflineAccess) {
		scopes = append(scopes, oidc.ScopeOfflineAccess)
	}
	a := &authRequest{
		id:           randomID(),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		loginHint:    req.LoginHint,
		scopes:       scopes,
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
	}
	if req.CodeChallenge != "" {
		a.codeChallenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	a.created = s.now()
	s.authRequests[a.id] = a
	return a.clone(), nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok || s.now().Sub(a.created) > authRequestTTL {
		return nil, errNotFound
	}
	return a.clone(), nil
}

// authRequest returns a copy of the pending request, for the login page.
func (s *storage) authRequest(id string) (*authRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok || s.now().Sub(a.created) > authRequestTTL {
		return nil, false
	}
	return a.clone(), true
}

// completeLogin records who signed in for the request and returns a copy.
func (s *storage) completeLogin(id string, user identity) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok || s.now().Sub(a.created) > authRequestTTL {
		return nil, errNotFound
	}
	a.user = user
	a.done = true
	a.authTime = s.now()
	s.users[user.Subject] = user
	return a.clone(), nil
}

func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[s.codes[code]]
	if !ok || a.code != code || s.now().Sub(a.codeAt) > codeTTL {
		return nil, errNotFound
	}
	return a.clone(), nil
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok {
		return errNotFound
	}
	if a.code != "" {
		delete(s.codes, a.code)
	}
	a.code, a.codeAt = code, s.now()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.authRequests[id]; ok {
		delete(s.codes, a.code)
		delete(s.authRequests, id)
	}
	return nil
}

// identityOf finds the signed-in person behind a token request.
func (s *storage) identityOf(req any) (identity, error) {
	switch r := req.(type) {
	case *authRequest:
		return r.user, nil
	case *refreshTokenRequest:
		return r.user, nil
	case interface{ GetSubject() string }:
		s.mu.Lock()
		defer s.mu.Unlock()
		if u, ok := s.users[r.GetSubject()]; ok {
			return u, nil
		}
	}
	return identity{}, errNotFound
}

// newAccessTokenLocked stores a fresh access token.
func (s *storage) newAccessTokenLocked(req op.TokenRequest, user identity, clientID, refresh string) *accessToken {
	t := &accessToken{
		id:           randomID(),
		clientID:     clientID,
		user:         user,
		scopes:       slices.Clone(req.GetScopes()),
		audience:     slices.Clone(req.GetAudience()),
		expires:      s.now().Add(s.accessTokenTTL),
		refreshToken: refresh,
	}
	s.accessTokens[t.id] = t
	return t
}

func clientIDOf(req op.TokenRequest) string {
	if r, ok := req.(interface{ GetClientID() string }); ok {
		return r.GetClientID()
	}
	return ""
}

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	user, err := s.identityOf(req)
	if err != nil {
		return "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	t := s.newAccessTokenLocked(req, user, clientIDOf(req), "")
	return t.id, t.expires, nil
}

func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	user, err := s.identityOf(req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	if current == "" { // authorization code grant: a new refresh token
		ar, ok := req.(*authRequest)
		if !ok {
			return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
		}
		rt := &refreshToken{
			token:    randomID(),
			clientID: ar.clientID,
			user:     user,
			scopes:   slices.Clone(ar.scopes),
			audience: ar.GetAudience(),
			authTime: ar.authTime,
			expires:  s.now().Add(s.refreshTokenTTL),
		}
		s.refreshTokens[rt.token] = rt
		at := s.newAccessTokenLocked(req, user, rt.clientID, rt.token)
		return at.id, rt.token, at.expires, nil
	}
	// refresh_token grant: the same refresh token stays valid.
	rt, ok := s.refreshTokens[current]
	if !ok || s.now().After(rt.expires) {
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is invalid, expired or revoked")
	}
	at := s.newAccessTokenLocked(req, user, rt.clientID, rt.token)
	return at.id, rt.token, at.expires, nil
}

func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	if s.rejectRefresh.Load() {
		return nil, errors.New("devidp: refreshes are being rejected")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok || s.now().After(rt.expires) {
		return nil, errNotFound
	}
	return &refreshTokenRequest{
		token:    rt.token,
		clientID: rt.clientID,
		user:     rt.user,
		scopes:   slices.Clone(rt.scopes),
		audience: slices.Clone(rt.audience),
		authTime: rt.authTime,
	}, nil
}

// TerminateSession revokes every token of the user for the client.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	if userID == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.accessTokens {
		if t.user.Subject == userID && t.clientID == clientID {
			delete(s.accessTokens, id)
		}
	}
	for id, t := range s.refreshTokens {
		if t.user.Subject == userID && t.clientID == clientID {
			delete(s.refreshTokens, id)
		}
	}
	return nil
}

// RevokeToken revokes an access token (by id) or a refresh token (by value,
// with every access token issued with it). Unknown tokens are no error
// (RFC 7009, section 2.2).
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.accessTokens[tokenOrID]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.accessTokens, tokenOrID)
		return nil
	}
	if rt, ok := s.refreshTokens[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.refreshTokens, tokenOrID)
		for id, t := range s.accessTokens {
			if t.refreshToken == tokenOrID {
				delete(s.accessTokens, id)
			}
		}
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.user.Subject, rt.token, nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != s.client.id {
		return nil, fmt.Errorf("devidp: unknown client %q", id)
	}
	return s.client, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != s.client.id {
		return fmt.Errorf("devidp: unknown client %q", id)
	}
	// Compare digests so that the comparison takes the same time whatever
	// the secrets' lengths.
	want, got := sha256.Sum256([]byte(s.client.secret)), sha256.Sum256([]byte(secret))
	if s.client.publicClient || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return errors.New("devidp: wrong client secret")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does the
// work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims. All of sub, email,
// email_verified, name and groups are sent whatever the scopes.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	user, err := s.identityOf(req)
	if err != nil {
		return err
	}
	setUserinfo(info, user)
	return nil
}

func setUserinfo(info *oidc.UserInfo, user identity) {
	info.Subject = user.Subject
	info.Email = user.Email
	info.EmailVerified = true
	info.Name = user.Name
	groups := user.Groups
	if groups == nil {
		groups = []string{}
	}
	info.AppendClaims("groups", groups)
}

// activeAccessToken returns a copy of an unexpired access token.
func (s *storage) activeAccessToken(id string) (accessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.accessTokens[id]
	if !ok || s.now().After(t.expires) {
		return accessToken{}, errors.New("devidp: access token is invalid, expired or revoked")
	}
	return *t, nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.activeAccessToken(tokenID)
	if err != nil {
		return err
	}
	if t.user.Subject != subject {
		return errors.New("devidp: token subject mismatch")
	}
	setUserinfo(info, t.user)
	return nil
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.activeAccessToken(tokenID)
	if err != nil {
		return err
	}
	if t.user.Subject != subject || !slices.Contains(t.audience, clientID) {
		return errors.New("devidp: token not valid for this client")
	}
	info := new(oidc.UserInfo)
	setUserinfo(info, t.user)
	resp.SetUserInfo(info)
	resp.Scope = t.scopes
	resp.ClientID = t.clientID
	resp.Expiration = oidc.FromTime(t.expires)
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("devidp: JWT profile client authentication is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("devidp: JWT profile grant is not supported")
}

func (s *storage) Health(context.Context) error { return nil }
