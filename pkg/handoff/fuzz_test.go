package handoff

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzProgrammaticRedirect checks the whitelist matcher: whatever it
// accepts is an http(s) URL without user information whose host is on the
// list, or loopback when localhost is.
func FuzzProgrammaticRedirect(f *testing.F) {
	for _, s := range []string{
		"http://localhost:8000/cb", "http://127.0.0.1/cb", "http://[::1]:1/", "https://cli.example.net/cb",
		"http://localhost@evil.com/", "http://evil.com\\@localhost/", "http://LOCALHOST./", "http://2130706433/",
		"https://app.localhost/", "//localhost/", "http:localhost", "http://[::ffff:127.0.0.1]/", "http://%6c%6fcalhost/",
	} {
		f.Add(s, "localhost")
		f.Add(s, "cli.example.net,localhost")
	}
	f.Fuzz(func(t *testing.T, raw, list string) {
		whitelist := strings.Split(list, ",")
		u, err := ProgrammaticRedirect(raw, whitelist)
		if err != nil {
			return
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Opaque != "" {
			t.Fatalf("accepted %q", raw)
		}
		host := strings.ToLower(u.Hostname())
		for _, d := range whitelist {
			d = strings.ToLower(strings.TrimSpace(d))
			if host == d || (d == "localhost" && isLoopback(host)) {
				// The URL as authenticate will write it must name the same host.
				again, err := url.Parse(u.String())
				if err != nil || strings.ToLower(again.Hostname()) != host {
					t.Fatalf("%q re-serialises as %q", raw, u.String())
				}
				return
			}
		}
		t.Fatalf("accepted %q for host %q not on %q", raw, host, list)
	})
}

// FuzzStripReservedQuery checks that no pomerium_ parameter survives, by
// the reading of Go's url.ParseQuery and of a ';'-splitting framework, and
// that stripping is idempotent.
func FuzzStripReservedQuery(f *testing.F) {
	for _, s := range []string{
		"a=1&pomerium_jwt=h", "POMERIUM_JWT=1", "pomerium%5Fjwt=1", "%70omerium_jwt=1", "a=1;pomerium_jwt=2",
		"pomerium-jwt=1", "+pomerium_jwt=1", "x=%2F&y=a+b", "%zz=1&pomerium_jwt=1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out, removed := StripReservedQuery(q)
		if !removed && out != q {
			t.Fatalf("changed %q to %q without saying so", q, out)
		}
		if again, r := StripReservedQuery(out); r || again != out {
			t.Fatalf("not idempotent: %q → %q → %q", q, out, again)
		}
		for _, sep := range []string{"&", ";"} {
			for part := range strings.SplitSeq(strings.ReplaceAll(out, ";", sep), sep) {
				name, _, _ := strings.Cut(part, "=")
				if dec, err := url.QueryUnescape(name); err == nil {
					name = dec
				}
				name = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(name), "-", "_"))
				if strings.HasPrefix(name, reservedQueryPrefix) {
					t.Fatalf("%q kept %q in %q", q, part, out)
				}
			}
		}
	})
}

// FuzzVerifyBinding checks the binding parameter parser and the cookie
// check: only the nonce of the binding named passes.
func FuzzVerifyBinding(f *testing.F) {
	b := NewBinding()
	f.Add(b.Param(), b.ID, b.Nonce)
	f.Add(b.Param(), b.ID, "")
	f.Add("x.y", "x", "z")
	f.Add("", "", "")
	f.Add(b.Param()+".", b.ID, b.Nonce)
	f.Fuzz(func(t *testing.T, param, cookieID, nonce string) {
		r := requestWith()
		if c := (&http.Cookie{Name: BindingCookiePrefix + cookieID, Value: nonce}); c.Valid() == nil {
			r.AddCookie(c)
		}
		id, err := VerifyBinding(param, r)
		if err != nil {
			return
		}
		if id != cookieID || param != id+"."+hashNonce(nonce) {
			t.Fatalf("VerifyBinding(%q) accepted cookie %q=%q", param, cookieID, nonce)
		}
	})
}
