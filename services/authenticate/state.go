package authenticate

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

// stateAD binds a sealed OAuth state to its purpose, so no other value
// sealed with cookie_secret can pass for one.
var stateAD = []byte("gatehouse oauth state v1")

// stateClockSkew is how far in the future a state's timestamp may be (the
// replica that sealed it may have a clock slightly ahead).
const stateClockSkew = time.Minute

// Errors of openState and of the replay check; each gets its own page.
var (
	// ErrStateInvalid means the state is missing, malformed, sealed under
	// another key, or modified.
	ErrStateInvalid = errors.New("the sign-in state is invalid or has been tampered with")
	// ErrStateExpired means the sign-in took longer than MaxStateAge.
	ErrStateExpired = errors.New("the sign-in took too long and has expired")
	// ErrStateReplayed means the state was already used once.
	ErrStateReplayed = errors.New("the sign-in state has already been used")
	// ErrCSRFMismatch means the CSRF cookie is missing or is not the one the
	// sign-in set.
	ErrCSRFMismatch = errors.New("the sign-in was not started by this browser (CSRF cookie missing or different)")
)

// authState is the OAuth state of one sign-in, sealed by the AEAD keyed by
// cookie_secret and sent through the IdP. The IdP sees only ciphertext.
type authState struct {
	// ID identifies the state for the single-use check.
	ID string `json:"id"`
	// CSRF is the token also set in the CSRF cookie.
	CSRF string `json:"csrf"`
	// IssuedAt is the Unix time the sign-in started.
	IssuedAt int64 `json:"iat"`
	// RedirectURI is where the user goes once signed in.
	RedirectURI string `json:"redirect_uri"`
	// Programmatic marks a programmatic login (pomerium_jwt to RedirectURI).
	Programmatic bool `json:"programmatic,omitempty"`
	// Nonce is the OpenID Connect nonce the ID token must carry.
	Nonce string `json:"nonce"`
	// Verifier is the PKCE code verifier.
	Verifier string `json:"verifier"`
	// Binding is the proxy's binding of the sign-in to the browser
	// (handoff.QueryBinding), handed back in the callback URL.
	Binding string `json:"binding,omitempty"`
}

// newAuthState returns a fresh state for a sign-in to redirectURI.
func newAuthState(redirectURI string, programmatic bool, now time.Time) *authState {
	return &authState{
		ID:           cryptutil.RandomToken(16),
		CSRF:         cryptutil.RandomToken(32),
		IssuedAt:     now.Unix(),
		RedirectURI:  redirectURI,
		Programmatic: programmatic,
		Nonce:        cryptutil.RandomToken(32),
		Verifier:     cryptutil.RandomToken(32), // 43 characters, RFC 7636's minimum
	}
}

// sealState seals st for the state parameter.
func sealState(c *cryptutil.Cipher, st *authState) string {
	b, err := json.Marshal(st)
	if err != nil {
		panic(err) // strings, an int and a bool always marshal
	}
	return c.Seal(b, stateAD)
}

// openState opens a sealed state and checks its age against now:
// ErrStateInvalid or ErrStateExpired.
func openState(c *cryptutil.Cipher, sealed string, now time.Time) (*authState, error) {
	if sealed == "" || len(sealed) > 4096 {
		return nil, ErrStateInvalid
	}
	b, err := c.Open(sealed, stateAD)
	if err != nil {
		return nil, ErrStateInvalid
	}
	var st authState
	if err := json.Unmarshal(b, &st); err != nil || st.ID == "" || st.CSRF == "" || st.Verifier == "" || st.Nonce == "" {
		return nil, ErrStateInvalid
	}
	issued := time.Unix(st.IssuedAt, 0)
	if now.Sub(issued) > MaxStateAge {
		return nil, ErrStateExpired
	}
	if issued.Sub(now) > stateClockSkew {
		return nil, ErrStateInvalid
	}
	return &st, nil
}

// checkCSRF compares the CSRF cookie with the state's token in constant time.
func checkCSRF(st *authState, cookie string) error {
	if cookie == "" || subtle.ConstantTimeCompare([]byte(cookie), []byte(st.CSRF)) != 1 {
		return ErrCSRFMismatch
	}
	return nil
}

// replayCache remembers the states already used until they would have
// expired anyway, so each is accepted once. The IdP's single-use codes
// guard the same across replicas; this catches a replay before the code
// exchange and gives it a clear page. It is safe for concurrent use.
type replayCache struct {
	mu        sync.Mutex
	used      map[string]time.Time // state id → when it can be forgotten
	lastPrune time.Time
}

func newReplayCache() *replayCache {
	return &replayCache{used: map[string]time.Time{}}
}

// use marks a state as used and reports whether it was unused before.
func (c *replayCache) use(st *authState, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.lastPrune) > time.Minute {
		for id, exp := range c.used {
			if now.After(exp) {
				delete(c.used, id)
			}
		}
		c.lastPrune = now
	}
	if _, ok := c.used[st.ID]; ok {
		return false
	}
	c.used[st.ID] = time.Unix(st.IssuedAt, 0).Add(MaxStateAge + stateClockSkew)
	return true
}
