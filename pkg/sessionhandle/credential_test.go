package sessionhandle

import (
	"net/http"
	"slices"
	"testing"
)

func TestFromHeaders(t *testing.T) {
	const name = "_pomerium"
	for _, tc := range []struct {
		name                  string
		authz, xpa, cookie    string
		wantHandle            string
		wantFromAuthz, wantOK bool // wantOK: FromAuthorization(authz) recognises the form
	}{
		{name: "nothing"},
		{name: "bearer form", authz: "Bearer Pomerium-h1", wantHandle: "h1", wantFromAuthz: true, wantOK: true},
		{name: "pomerium form", authz: "Pomerium h1", wantHandle: "h1", wantFromAuthz: true, wantOK: true},
		// Schemes compare without case (RFC 7235); authenticate used to
		// compare them with case and refuse these.
		{name: "bearer form, lower case", authz: "bearer pomerium-h1", wantHandle: "h1", wantFromAuthz: true, wantOK: true},
		{name: "pomerium form, upper case", authz: "POMERIUM h1", wantHandle: "h1", wantFromAuthz: true, wantOK: true},
		{name: "spaces after bearer", authz: "Bearer  \tPomerium-h1 ", wantHandle: "h1", wantFromAuthz: true, wantOK: true},
		{name: "plain bearer token is the upstream's", authz: "Bearer abc", cookie: "_pomerium=c1", wantHandle: "c1"},
		{name: "basic is the upstream's", authz: "Basic eHl6", wantHandle: ""},
		{name: "empty handle falls through", authz: "Pomerium ", cookie: "_pomerium=c1", wantHandle: "c1", wantOK: true},
		{name: "authorization before the others", authz: "Pomerium h1", xpa: "h2", cookie: "_pomerium=c1", wantHandle: "h1", wantFromAuthz: true, wantOK: true},
		{name: "x-pomerium-authorization", xpa: "h2", cookie: "_pomerium=c1", wantHandle: "h2"},
		{name: "x-pomerium-authorization with scheme", xpa: " Pomerium h2", wantHandle: "h2"},
		{name: "cookie", cookie: "a=1; _pomerium=c1; b=2", wantHandle: "c1"},
		{name: "quoted cookie", cookie: `_pomerium="c1"`, wantHandle: "c1"},
		{name: "first cookie of the name", cookie: "_pomerium=c1; _pomerium=c2", wantHandle: "c1"},
		{name: "bare name skipped", cookie: "_pomerium; _pomerium=c1", wantHandle: "c1"},
		{name: "other cookie names", cookie: "_pomerium_csrf=x; x_pomerium=y", wantHandle: ""},
		{name: "spaces around the name", cookie: "a=1;  _pomerium =c1 ", wantHandle: "c1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, from := FromHeaders(tc.authz, tc.xpa, tc.cookie, name)
			if h != tc.wantHandle || from != tc.wantFromAuthz {
				t.Errorf("FromHeaders = %q, %v; want %q, %v", h, from, tc.wantHandle, tc.wantFromAuthz)
			}
			if _, ok := FromAuthorization(tc.authz); ok != tc.wantOK {
				t.Errorf("FromAuthorization ok = %v, want %v", ok, tc.wantOK)
			}
			hdr := http.Header{}
			for k, v := range map[string]string{"Authorization": tc.authz, HeaderPomeriumAuthorization: tc.xpa, "Cookie": tc.cookie} {
				if v != "" {
					hdr.Set(k, v)
				}
			}
			if h, from := FromRequest(hdr, name); h != tc.wantHandle || from != tc.wantFromAuthz {
				t.Errorf("FromRequest = %q, %v; want %q, %v", h, from, tc.wantHandle, tc.wantFromAuthz)
			}
			// What is read is what is stripped.
			StripCredentials(hdr, name)
			if h, _ := FromRequest(hdr, name); h != "" {
				t.Errorf("after StripCredentials a handle is left: %q (%v)", h, hdr)
			}
		})
	}
}

func TestCookieFromHeaderLines(t *testing.T) {
	h := http.Header{"Cookie": {"a=1", "_pomerium=c1"}}
	if got := CookieFromHeader(h, "_pomerium"); got != "c1" {
		t.Errorf("CookieFromHeader = %q", got)
	}
	if got, _ := FromRequest(h, "_pomerium"); got != "c1" {
		t.Errorf("FromRequest = %q", got)
	}
}

func TestStripCredentials(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want http.Header
	}{
		{
			name: "other credentials stay",
			in:   http.Header{"Authorization": {"Basic eHl6"}, "Cookie": {"a=1"}},
			want: http.Header{"Authorization": {"Basic eHl6"}, "Cookie": {"a=1"}},
		},
		{
			name: "pomerium forms go",
			in:   http.Header{"Authorization": {"Pomerium h", "Bearer abc", "bearer  Pomerium-h"}, HeaderPomeriumAuthorization: {"h"}},
			want: http.Header{"Authorization": {"Bearer abc"}},
		},
		{
			name: "only cookie",
			in:   http.Header{"Cookie": {"_pomerium=a"}},
			want: http.Header{},
		},
		{
			name: "cookie among others, several lines",
			in:   http.Header{"Cookie": {"a=1; _pomerium=x; b=2", "_pomerium=y", "c=3;_pomerium=z"}},
			want: http.Header{"Cookie": {"a=1; b=2", "c=3"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			StripCredentials(tc.in, "_pomerium")
			if len(tc.in) != len(tc.want) {
				t.Fatalf("got %v, want %v", tc.in, tc.want)
			}
			for k, v := range tc.want {
				if !slices.Equal(tc.in[k], v) {
					t.Errorf("%s = %q, want %q", k, tc.in[k], v)
				}
			}
		})
	}
}

func TestRemoveCookie(t *testing.T) {
	for in, want := range map[string]string{
		"_pomerium=a":                        "",
		"a=1; _pomerium=x; b=2":              "a=1; b=2",
		"a=1;_pomerium=x":                    "a=1",
		"_pomerium_csrf=1; _pomerium=":       "_pomerium_csrf=1",
		"a=1; _pomerium=x; b=2; _pomerium=y": "a=1; b=2",
		"_pomerium=x;a=1":                    "a=1",
		"a=1; b=2":                           "a=1; b=2",
	} {
		if got := removeCookie(in, "_pomerium"); got != want {
			t.Errorf("removeCookie(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCredentialsDoNotAllocate(t *testing.T) {
	h := http.Header{"Authorization": {"Basic eHl6"}, "Cookie": {"a=1; b=2"}}
	n := testing.AllocsPerRun(100, func() {
		FromHeaders("Bearer Pomerium-h", "", "a=1; _pomerium=c1", "_pomerium")
		FromHeaders("", "", "a=1; _pomerium=c1", "_pomerium")
		StripCredentials(h, "_pomerium")
	})
	if n != 0 {
		t.Errorf("%v allocations", n)
	}
}
