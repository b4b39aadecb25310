package handoff

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

func requestWith(cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com"+CallbackPath, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return r
}

func TestBinding(t *testing.T) {
	b := NewBinding()
	if b2 := NewBinding(); b2.ID == b.ID || b2.Nonce == b.Nonce {
		t.Fatal("bindings repeat")
	}
	p := b.Param()
	if strings.Contains(p, b.Nonce) {
		t.Fatal("the parameter reveals the nonce")
	}
	if id, err := ParseBinding(p); err != nil || id != b.ID {
		t.Fatalf("ParseBinding(%q) = %q, %v", p, id, err)
	}
	c := b.Cookie(true)
	if c.Name != BindingCookiePrefix+b.ID || c.Value != b.Nonce || c.Path != CallbackPath || !c.HttpOnly || !c.Secure ||
		c.Domain != "" || c.SameSite != http.SameSiteLaxMode || c.MaxAge != int(BindingMaxAge/time.Second) {
		t.Errorf("cookie %+v", c)
	}
	if b.Cookie(false).Secure {
		t.Error("Secure on a plain-HTTP route")
	}
	if clr := ClearBindingCookie(b.ID, true); clr.Name != c.Name || clr.Path != c.Path || clr.MaxAge >= 0 {
		t.Errorf("clear cookie %+v", clr)
	}

	if id, err := VerifyBinding(p, requestWith(c)); err != nil || id != b.ID {
		t.Fatalf("the browser that started the sign-in: %q %v", id, err)
	}
	other := NewBinding()
	for name, r := range map[string]*http.Request{
		"no cookie":             requestWith(),
		"another sign-in's":     requestWith(other.Cookie(true)),
		"right name, wrong one": requestWith(&http.Cookie{Name: c.Name, Value: other.Nonce}),
		"right name, empty":     requestWith(&http.Cookie{Name: c.Name, Value: ""}),
		"hash as the value":     requestWith(&http.Cookie{Name: c.Name, Value: p[len(b.ID)+1:]}),
	} {
		if _, err := VerifyBinding(p, r); !errors.Is(err, ErrBinding) {
			t.Errorf("%s: %v, want ErrBinding", name, err)
		}
	}
	for _, bad := range []string{"", ".", b.ID, b.ID + ".", "." + p[len(b.ID)+1:], b.ID + "." + p[len(b.ID)+1:] + "x",
		"!" + p[1:], b.ID + ".." + p[len(b.ID)+2:], strings.Replace(p, ".", "=", 1)} {
		if _, err := ParseBinding(bad); !errors.Is(err, ErrBinding) {
			t.Errorf("ParseBinding(%q) = %v, want ErrBinding", bad, err)
		}
	}
}

func TestBindSignInURL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	auth, _ := url.Parse("https://authenticate.example.com")
	b := NewBinding()
	signIn := SignInURL(auth, "https://app.example.com/x", false, key, now)
	bound, err := BindSignInURL(signIn, b.Param(), key, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := cryptutil.VerifySignedURL(key, bound, now.Add(time.Second)); err != nil {
		t.Fatalf("bound URL does not verify: %v", err)
	}
	q := bound.Query()
	if q.Get(QueryBinding) != b.Param() || q.Get(QueryRedirectURI) != "https://app.example.com/x" || bound.Host != auth.Host || bound.Path != SignInPath {
		t.Errorf("bound URL %s", bound)
	}
	// Rebinding replaces the binding (one value only).
	again, err := BindSignInURL(bound, NewBinding().Param(), key, now)
	if err != nil || len(again.Query()[QueryBinding]) != 1 {
		t.Errorf("rebinding: %v %s", err, again)
	}

	forged := *signIn
	forged.RawQuery = strings.Replace(forged.RawQuery, "app.example.com", "evil.example.com", 1)
	other := *signIn
	other.Path = SignOutPath
	for name, tt := range map[string]struct {
		u     *url.URL
		param string
	}{
		"unsigned":     {&url.URL{Scheme: "https", Host: auth.Host, Path: SignInPath, RawQuery: "pomerium_redirect_uri=x"}, b.Param()},
		"forged":       {&forged, b.Param()},
		"not sign-in":  {&other, b.Param()},
		"programmatic": {SignInURL(auth, "http://localhost/cb", true, key, now), b.Param()},
		"expired":      {SignInURL(auth, "https://app.example.com/", false, key, now.Add(-time.Hour)), b.Param()},
		"bad param":    {signIn, "nope"},
	} {
		if _, err := BindSignInURL(tt.u, tt.param, key, now); err == nil {
			t.Errorf("%s: bound", name)
		}
	}
}

func TestUsedSet(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := NewUsedSet(2)
	if !s.Use("a", now.Add(time.Minute), now) || s.Use("a", now.Add(time.Minute), now) {
		t.Fatal("a used twice")
	}
	if !s.Use("b", now.Add(time.Minute), now) {
		t.Fatal("b refused")
	}
	if s.Use("c", now.Add(time.Minute), now) {
		t.Fatal("a full set accepted c")
	}
	later := now.Add(2 * time.Minute)
	if !s.Use("c", later.Add(time.Minute), later) {
		t.Fatal("c refused after a and b expired")
	}
}

func TestSignOutToken(t *testing.T) {
	tok := SignOutToken(key, "handle-1")
	if err := CheckSignOutToken(key, "handle-1", tok); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct{ key, subject, token string }{
		"empty":         {string(key), "handle-1", ""},
		"other session": {string(key), "handle-2", tok},
		"no session":    {string(key), "", tok},
		"other key":     {"another-key-another-key-another!!", "handle-1", tok},
		"forged":        {string(key), "handle-1", tok[:len(tok)-1] + "A"},
	} {
		if err := CheckSignOutToken([]byte(tt.key), tt.subject, tt.token); !errors.Is(err, ErrSignOutCSRF) {
			t.Errorf("%s: %v, want ErrSignOutCSRF", name, err)
		}
	}
}
