package handoff

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

// FuzzOpenCallback feeds OpenCallback the query of a callback request as an
// attacker sends it (any bytes), and round-trips callbacks that CallbackURL
// builds from fuzzed handles and redirects. It must never panic, and what
// it accepts must be for the host it was received on.
func FuzzOpenCallback(f *testing.F) {
	c, err := cryptutil.NewCipher(key)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	good := CallbackURL(&url.URL{Scheme: "https", Host: "app.example.com", Path: "/d", RawQuery: "x=1"}, "h", NewBinding().Param(), key, c, now)
	f.Add(good.RawQuery, "app.example.com", "h", "https://app.example.com/d?x=1")
	f.Add("", "app.example.com", "", "")
	f.Add("pomerium_redirect_uri=https%3A%2F%2Fapp.example.com%2F&pomerium_signature=AAAA", "app.example.com", "x", "http://app.example.com:8080/")
	f.Add("%zz&pomerium_signature=%", "app.example.com:443", "h", "javascript:alert(1)")
	f.Add(strings.Replace(good.RawQuery, "pomerium_binding=", "pomerium_binding=x", 1), "app.example.com", "h", "https://[::1]/")
	f.Fuzz(func(t *testing.T, rawQuery, host, handle, redirect string) {
		u := &url.URL{Scheme: "https", Host: host, Path: CallbackPath, RawQuery: rawQuery}
		if cb, err := OpenCallback(u, host, key, c, now); err == nil {
			checkCallback(t, cb, host)
		}
		ru, err := url.Parse(redirect)
		if err != nil || ru.Host == "" {
			return
		}
		b := NewBinding()
		built := CallbackURL(ru, handle, b.Param(), key, c, now)
		cb, err := OpenCallback(built, ru.Host, key, c, now)
		if err != nil {
			if ru.Scheme == "http" || ru.Scheme == "https" {
				// url.Parse accepted it, so String/Parse round-trips; a
				// refusal here would break real sign-ins.
				if _, perr := url.Parse(built.Query().Get(QueryRedirectURI)); perr == nil {
					t.Fatalf("callback built for %q does not open: %v", redirect, err)
				}
			}
			return
		}
		checkCallback(t, cb, ru.Host)
		if cb.Handle != handle || cb.BindingID != b.ID {
			t.Fatalf("round trip: handle %q binding %q, want %q %q", cb.Handle, cb.BindingID, handle, b.ID)
		}
	})
}

func checkCallback(t *testing.T, cb *Callback, host string) {
	t.Helper()
	if cb.RedirectURI == nil || (cb.RedirectURI.Scheme != "http" && cb.RedirectURI.Scheme != "https") || !sameHost(cb.RedirectURI.Host, host) {
		t.Fatalf("accepted a callback that goes to %v from host %q", cb.RedirectURI, host)
	}
	if _, err := ParseBinding(cb.Binding); err != nil || cb.BindingID == "" {
		t.Fatalf("accepted a callback without a binding: %q", cb.Binding)
	}
}
