package pathnorm

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

var (
	defaults   = Options{}
	keep       = Options{EscapedSlashes: KeepEscapedSlashes}
	redirect   = Options{EscapedSlashes: UnescapeAndRedirect}
	forward    = Options{EscapedSlashes: UnescapeAndForward}
	noMerge    = Options{KeepDoubleSlashes: true}
	noNorm     = Options{NoNormalize: true}
	noNormKeep = Options{NoNormalize: true, KeepDoubleSlashes: true, EscapedSlashes: KeepEscapedSlashes}
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		in, want string
		redirect bool
		err      error
	}{
		// Already normal: returned as is.
		{name: "root", in: "/", want: "/"},
		{name: "plain", in: "/open/secret", want: "/open/secret"},
		{name: "trailing slash", in: "/open/", want: "/open/"},
		{name: "case is significant", in: "/OPEN", want: "/OPEN"},
		{name: "sub-delims stay raw", in: "/a;b=c/d,e!$&'()*+:@", want: "/a;b=c/d,e!$&'()*+:@"},
		{name: "reserved escape stays", in: "/a%3Bb%3F%23%25", want: "/a%3Bb%3F%23%25"},
		{name: "dots inside a segment", in: "/a/.b/..c/...", want: "/a/.b/..c/..."},

		// Encoded unreserved characters are decoded (RFC 3986 §6.2.2.2).
		{name: "encoded letter", in: "/open/%73ecret", want: "/open/secret"},
		{name: "encoded upper letter", in: "/%4F%50EN", want: "/OPEN"},
		{name: "encoded tilde dash digit", in: "/%7e%2D%5f%30", want: "/~-_0"},
		{name: "lower hex upper-cased", in: "/a%3bb%e2%82%ac", want: "/a%3Bb%E2%82%AC"},
		{name: "double encoding is one layer", in: "/open/%2573ecret", want: "/open/%2573ecret"},
		{name: "double encoded dots stay", in: "/open/%252e%252e/x", want: "/open/%252e%252e/x"},

		// Dot segments (RFC 3986 §5.2.4), encoded ones too.
		{name: "dot", in: "/open/./secret", want: "/open/secret"},
		{name: "dot dot", in: "/open/x/../secret", want: "/open/secret"},
		{name: "encoded dot dot", in: "/open/x/%2e%2e/secret", want: "/open/secret"},
		{name: "mixed encoded dot", in: "/open/x/.%2E/secret", want: "/open/secret"},
		{name: "encoded dot", in: "/open/%2e/secret", want: "/open/secret"},
		{name: "above root clamps", in: "/../../etc", want: "/etc"},
		{name: "only dot dot", in: "/..", want: "/"},
		{name: "only dot", in: "/.", want: "/"},
		{name: "trailing dot keeps slash", in: "/a/b/.", want: "/a/b/"},
		{name: "trailing dot dot keeps slash", in: "/a/b/..", want: "/a/"},
		{name: "rfc example", in: "/a/b/c/./../../g", want: "/a/g"},
		{name: "dot dot to root", in: "/a/../", want: "/"},

		// Repeated slashes are merged.
		{name: "double slash", in: "/open//secret", want: "/open/secret"},
		{name: "leading double slash", in: "//open", want: "/open"},
		{name: "many slashes", in: "///a////b///", want: "/a/b/"},
		{name: "dot then slash", in: "/a/.//b", want: "/a/b"},
		{name: "double slash then dot dot", in: "/a//../b", want: "/a/b"},
		{name: "keep double slashes", opts: noMerge, in: "/open//secret", want: "/open//secret"},
		{name: "keep double slashes, dot dot", opts: noMerge, in: "/a/..//b", want: "//b"},
		{name: "keep double slashes, empty popped", opts: noMerge, in: "/a//../b", want: "/a/b"},

		// Backslashes and bytes a path may not hold raw.
		{name: "backslash is a slash", in: `/open\secret`, want: "/open/secret"},
		{name: "backslash dot dot", in: `/open\..\admin`, want: "/admin"},
		{name: "space and quote encoded", in: `/a b"c`, want: "/a%20b%22c"},
		{name: "brackets and braces encoded", in: "/[x]{y}|^`<>", want: "/%5Bx%5D%7By%7D%7C%5E%60%3C%3E"},
		{name: "utf-8 encoded", in: "/caf\xc3\xa9", want: "/caf%C3%A9"},

		// Encoded slashes and backslashes.
		{name: "encoded slash refused", in: "/open%2fsecret", err: ErrEscapedSlash},
		{name: "encoded upper slash refused", in: "/open%2Fsecret", err: ErrEscapedSlash},
		{name: "encoded backslash refused", in: "/open%5csecret", err: ErrEscapedSlash},
		{name: "keep: kept, upper-cased", opts: keep, in: "/open%2fsecret", want: "/open%2Fsecret"},
		{name: "keep: not a separator", opts: keep, in: "/a/%2e%2e%2fb", want: "/a/..%2Fb"},
		{name: "keep: backslash kept", opts: keep, in: "/a%5cb", want: "/a%5Cb"},
		{name: "forward: a separator", opts: forward, in: "/open%2fsecret", want: "/open/secret"},
		{name: "forward: then dot segments", opts: forward, in: "/open/x%2f..%2fsecret", want: "/open/secret"},
		{name: "forward: backslash", opts: forward, in: "/open%5Csecret", want: "/open/secret"},
		{name: "forward: merged", opts: forward, in: "/open%2F%2Fsecret", want: "/open/secret"},
		{name: "redirect", opts: redirect, in: "/open%2Fsecret", want: "/open/secret", redirect: true},
		{name: "redirect: no slash, no redirect", opts: redirect, in: "/open/%73ecret", want: "/open/secret"},

		// Refused.
		{name: "empty", in: "", err: ErrNotOriginForm},
		{name: "asterisk", in: "*", err: ErrNotOriginForm},
		{name: "absolute form", in: "http://evil.test/open", err: ErrNotOriginForm},
		{name: "relative", in: "open/secret", err: ErrNotOriginForm},
		{name: "NUL", in: "/a\x00b", err: ErrControl},
		{name: "encoded NUL", in: "/a%00b", err: ErrControl},
		{name: "newline", in: "/a\nb", err: ErrControl},
		{name: "tab", in: "/a\tb", err: ErrControl},
		{name: "DEL", in: "/a\x7fb", err: ErrControl},
		{name: "fragment", in: "/a#b", err: ErrQueryOrFragment},
		{name: "query not split off", opts: noNorm, in: "/a?b", err: ErrQueryOrFragment},
		{name: "bad escape", in: "/a%zzb", err: ErrInvalidEscape},
		{name: "short escape", in: "/a%2", err: ErrInvalidEscape},
		{name: "lone percent", in: "/a%", err: ErrInvalidEscape},
		{name: "half hex", in: "/a%g0", err: ErrInvalidEscape},
		{name: "no-normalize still refuses controls", opts: noNorm, in: "/a\x01", err: ErrControl},
		{name: "no-normalize still refuses %2F", opts: noNorm, in: "/a%2Fb", err: ErrEscapedSlash},

		// normalize_path: false keeps what it is not asked to change.
		{name: "no-normalize keeps escapes", opts: noNorm, in: "/open/%73ecret", want: "/open/%73ecret"},
		{name: "no-normalize keeps dot segments", opts: noNorm, in: "/a/../b", want: "/a/../b"},
		{name: "no-normalize still merges", opts: noNorm, in: "/a//b", want: "/a/b"},
		{name: "no-normalize keeps backslash", opts: noNorm, in: `/a\b`, want: `/a\b`},
		{name: "no-normalize, keep everything", opts: noNormKeep, in: "/a//%2f/../%7e", want: "/a//%2f/../%7e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, redir, err := tt.opts.Normalize(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Normalize(%q) = %q, %v; want error %v", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want || redir != tt.redirect {
				t.Fatalf("Normalize(%q) = %q, %v, %v; want %q, %v", tt.in, got, redir, err, tt.want, tt.redirect)
			}
			again, redir2, err := tt.opts.Normalize(got)
			if err != nil || again != got || redir2 {
				t.Fatalf("not idempotent: Normalize(%q) = %q, %v, %v", got, again, redir2, err)
			}
		})
	}
}

// The paths that reach /open/secret on a Go upstream all have one normal
// form; a rule written for /open/secret sees every one of them.
func TestOneFormForEverySpelling(t *testing.T) {
	for _, p := range []string{
		"/open/secret", "/open/%73ecret", "/open//secret", "/open/./secret", "/open/x/../secret",
		"/open/%2e/secret", "/open/x/%2E%2E/secret", `/open\secret`, "//open///secret", "/%6fpen/secre%74",
	} {
		got, _, err := defaults.Normalize(p)
		if err != nil || got != "/open/secret" {
			t.Errorf("Normalize(%q) = %q, %v; want /open/secret", p, got, err)
		}
	}
	if _, _, err := defaults.Normalize("/open%2fsecret"); !errors.Is(err, ErrEscapedSlash) {
		t.Errorf("/open%%2fsecret: %v, want ErrEscapedSlash", err)
	}
}

func TestParseEscapedSlashes(t *testing.T) {
	for in, want := range map[string]EscapedSlashes{
		"": RejectEscapedSlashes, "reject_request": RejectEscapedSlashes, "REJECT_REQUEST": RejectEscapedSlashes,
		"IMPLEMENTATION_SPECIFIC_DEFAULT": RejectEscapedSlashes, "keep_unchanged": KeepEscapedSlashes,
		"KEEP_UNCHANGED": KeepEscapedSlashes, "unescape_and_redirect": UnescapeAndRedirect,
		" Unescape_And_Forward ": UnescapeAndForward,
	} {
		got, err := ParseEscapedSlashes(in)
		if err != nil || got != want {
			t.Errorf("ParseEscapedSlashes(%q) = %v, %v; want %v", in, got, err, want)
		}
		if err == nil && in != "" && !strings.EqualFold(strings.TrimSpace(in), "implementation_specific_default") {
			if !strings.EqualFold(got.String(), strings.TrimSpace(in)) {
				t.Errorf("%v.String() = %q, want %q", got, got.String(), in)
			}
		}
	}
	if _, err := ParseEscapedSlashes("decode"); err == nil {
		t.Error("ParseEscapedSlashes(decode) accepted")
	}
}

// An already-normal path costs no allocation: every request pays for
// Normalize.
func TestNormalPathDoesNotAllocate(t *testing.T) {
	for _, p := range []string{"/", "/d/abc-def/grafana-dashboard", "/api/v1/users/42", "/a%20b/%E2%82%AC"} {
		allocs := testing.AllocsPerRun(100, func() {
			if got, _, err := defaults.Normalize(p); err != nil || got != p {
				t.Fatalf("Normalize(%q) = %q, %v", p, got, err)
			}
		})
		if allocs != 0 {
			t.Errorf("Normalize(%q): %v allocations, want 0", p, allocs)
		}
	}
}

// checkInvariants is what every normalized path promises.
func checkInvariants(t *testing.T, o Options, in, norm string) {
	t.Helper()
	if norm == "" || norm[0] != '/' {
		t.Fatalf("Normalize(%q) = %q: not an absolute path", in, norm)
	}
	if strings.ContainsAny(norm, "?#") {
		t.Fatalf("Normalize(%q) = %q: holds ? or #", in, norm)
	}
	for i := 0; i < len(norm); i++ {
		if isControl(norm[i]) {
			t.Fatalf("Normalize(%q) = %q: control byte at %d", in, norm, i)
		}
	}
	if !o.KeepDoubleSlashes && strings.Contains(norm, "//") {
		t.Fatalf("Normalize(%q) = %q: holds //", in, norm)
	}
	if o.NoNormalize {
		return
	}
	for _, s := range strings.Split(norm, "/") {
		if s == "." || s == ".." {
			t.Fatalf("Normalize(%q) = %q: dot segment", in, norm)
		}
	}
	for i := 0; i < len(norm); i++ {
		c := norm[i]
		if c == '%' {
			if i+2 >= len(norm) || classes[norm[i+1]]&clsUpperHex == 0 || classes[norm[i+2]]&clsUpperHex == 0 {
				t.Fatalf("Normalize(%q) = %q: escape at %d is not two upper-case hex digits", in, norm, i)
			}
			v := unhex(norm[i+1])<<4 | unhex(norm[i+2])
			if classes[v]&clsUnreserved != 0 {
				t.Fatalf("Normalize(%q) = %q: encoded unreserved %q", in, norm, v)
			}
			i += 2
			continue
		}
		if classes[c]&clsRaw == 0 {
			t.Fatalf("Normalize(%q) = %q: raw byte %q", in, norm, c)
		}
	}
	u, err := url.ParseRequestURI(norm)
	if err != nil {
		t.Fatalf("Normalize(%q) = %q: url.ParseRequestURI: %v", in, norm, err)
	}
	if u.EscapedPath() != norm {
		t.Fatalf("Normalize(%q) = %q: net/url reads it back as %q", in, norm, u.EscapedPath())
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"/", "/open/secret", "/open/%73ecret", "/open//secret", "/open%2fsecret", "/open/./secret",
		"/open/x/../secret", "/OPEN", "/open/%2e%2e/secret", `/a\..\b`, "/a%00", "/a%zz", "//x", "/..",
		"/a/b/..", "/%252e%252e", "/caf\xc3\xa9", "/a b", "/a#b", "*", "http://x/y", "/a%5C..%5Cb",
	} {
		for o := range uint8(16) {
			f.Add(s, o)
		}
	}
	f.Fuzz(func(t *testing.T, in string, bits uint8) {
		o := Options{
			NoNormalize:       bits&1 != 0,
			KeepDoubleSlashes: bits&2 != 0,
			EscapedSlashes:    EscapedSlashes(bits >> 2 & 3),
		}
		norm, _, err := o.Normalize(in) // must not panic
		if err != nil {
			if norm != "" {
				t.Fatalf("Normalize(%q) = %q with error %v", in, norm, err)
			}
			return
		}
		checkInvariants(t, o, in, norm)
		again, redir, err := o.Normalize(norm)
		if err != nil || again != norm || redir {
			t.Fatalf("not idempotent: Normalize(%q) = %q; Normalize(%q) = %q, %v, %v", in, norm, norm, again, redir, err)
		}
		// The fast path agrees with the slow one.
		if normal, _ := o.check(in); normal {
			slow, _, _ := o.rewrite(in)
			if slow != in {
				t.Fatalf("check says %q is normal, rewrite makes it %q", in, slow)
			}
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	for _, bc := range []struct{ name, path string }{
		{"normal", "/d/abc-def/grafana-dashboard"},
		{"normal-escaped", "/api/v1/search/a%20b%3Bc"},
		{"rewrite", "/api/./v1//users/%34%32/../x"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := defaults.Normalize(bc.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
