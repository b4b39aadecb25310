// Package pathnorm puts a request path into the one form that gatehouse
// routes on, authorizes and forwards, so that the route matcher, the
// http_path policy criterion and the upstream can never read one request
// as three different paths (/open/%73ecret, /open//secret and
// /open/./secret are all /open/secret to a Go upstream).
//
// The rules are Envoy's, as Pomerium configures its HTTP connection
// manager (normalize_path, merge_slashes, path_with_escaped_slashes_action),
// applied in Envoy's order:
//
//  1. The path must be origin-form ("/..."), hold no control character, no
//     raw '?' or '#', no invalid percent-encoding and no encoded NUL (%00).
//  2. %2F and %5C (an encoded slash or backslash) are refused, kept, or
//     unescaped to a separator, as Options.EscapedSlashes says.
//  3. RFC 3986 §6.2.2 normalization (unless Options.NoNormalize):
//     percent-encoded unreserved characters are decoded (%7E is ~, %2E is
//     '.'), the remaining percent-encodings get upper-case hex (%2f is
//     %2F), a raw backslash is a slash (as Envoy's and browsers' URL
//     parsers read it), characters a path may not hold raw (space, '"',
//     '{', bytes above 0x7F...) are percent-encoded, and dot segments are
//     removed (RFC 3986 §5.2.4), encoded ones too since %2E decodes first.
//  4. Repeated slashes are merged into one (unless
//     Options.KeepDoubleSlashes).
//
// Case is significant (/OPEN is not /open) and reserved characters keep
// their spelling (%3B is not ';'), as in RFC 3986 and Envoy. The query is
// not the path's business: callers split it off at the first '?' before
// calling Normalize and append it unchanged; since the output never holds a
// raw '?' or '#', nothing in it can move into or out of the query.
//
// Normalize is idempotent: Normalize(Normalize(p)) == Normalize(p).
package pathnorm

import (
	"errors"
	"fmt"
	"strings"
)

// EscapedSlashes says what Normalize does with an encoded slash (%2F) or
// backslash (%5C) in a path: Envoy's path_with_escaped_slashes_action.
type EscapedSlashes uint8

const (
	// RejectEscapedSlashes refuses the path with ErrEscapedSlash (Envoy's
	// REJECT_REQUEST). It is the zero value and the default: an upstream
	// that decodes %2F before routing would otherwise serve a path that
	// neither the route matcher nor the policy saw.
	RejectEscapedSlashes EscapedSlashes = iota
	// KeepEscapedSlashes keeps them, encoded, as part of a segment
	// (KEEP_UNCHANGED): for upstreams, such as Argo CD, that put a URL in
	// one path segment. Only safe when the upstream does not decode them
	// into separators.
	KeepEscapedSlashes
	// UnescapeAndRedirect decodes them into separators and tells the caller
	// to redirect the client to the result (UNESCAPE_AND_REDIRECT), so
	// every hop after it sees the path with plain slashes.
	UnescapeAndRedirect
	// UnescapeAndForward decodes them into separators and goes on with the
	// result (UNESCAPE_AND_FORWARD).
	UnescapeAndForward
)

// escapedSlashesNames are the option values, Envoy's enum names in lower
// case (Pomerium's spelling); ParseEscapedSlashes takes either case.
var escapedSlashesNames = [...]string{
	RejectEscapedSlashes: "reject_request",
	KeepEscapedSlashes:   "keep_unchanged",
	UnescapeAndRedirect:  "unescape_and_redirect",
	UnescapeAndForward:   "unescape_and_forward",
}

// String returns the option value naming a, such as "reject_request".
func (a EscapedSlashes) String() string {
	if int(a) < len(escapedSlashesNames) {
		return escapedSlashesNames[a]
	}
	return fmt.Sprintf("EscapedSlashes(%d)", uint8(a))
}

// ParseEscapedSlashes reads a path_with_escaped_slashes_action value:
// reject_request, keep_unchanged, unescape_and_redirect or
// unescape_and_forward, in either case. "" and Envoy's
// implementation_specific_default mean the default, reject_request.
func ParseEscapedSlashes(s string) (EscapedSlashes, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "" || v == "implementation_specific_default" {
		return RejectEscapedSlashes, nil
	}
	for i, name := range escapedSlashesNames {
		if v == name {
			return EscapedSlashes(i), nil
		}
	}
	return 0, fmt.Errorf("expected one of reject_request, keep_unchanged, unescape_and_redirect, unescape_and_forward, got %q", s)
}

// Options choose among the rules Envoy lets an operator turn off. The zero
// value is the safe default: normalize, merge slashes, refuse %2F and %5C
// (Pomerium's defaults since v0.33).
type Options struct {
	// NoNormalize skips the RFC 3986 normalization (normalize_path:
	// false): the path keeps its escapes, dot segments and backslashes as
	// received. The checks of rule 1 and the escaped-slash and
	// merge-slashes rules still apply.
	NoNormalize bool
	// KeepDoubleSlashes keeps empty segments (merge_slashes: false).
	KeepDoubleSlashes bool
	// EscapedSlashes is what to do with %2F and %5C.
	EscapedSlashes EscapedSlashes
}

// Errors for a path that Normalize refuses. Each is returned wrapped with
// the byte offset where the path went wrong; test with errors.Is.
var (
	// ErrNotOriginForm: the path is empty or does not start with '/'
	// (absolute-form "http://host/x", asterisk-form "*", authority-form).
	ErrNotOriginForm = errors.New("pathnorm: the path is not an absolute path starting with /")
	// ErrControl: a control character (0x00-0x1F, 0x7F), raw or as %00.
	ErrControl = errors.New("pathnorm: the path holds a control character")
	// ErrInvalidEscape: a '%' not followed by two hex digits.
	ErrInvalidEscape = errors.New("pathnorm: the path holds an invalid percent-encoding")
	// ErrQueryOrFragment: a raw '?' or '#': the caller did not split the
	// query off, or the client sent a fragment, which never travels in a
	// request.
	ErrQueryOrFragment = errors.New("pathnorm: the path holds a '?' or '#'")
	// ErrEscapedSlash: %2F or %5C with RejectEscapedSlashes.
	ErrEscapedSlash = errors.New("pathnorm: the path holds an encoded slash (%2F) or backslash (%5C)")
)

// Normalize returns the normal form of p, an escaped request path without
// its query. redirect is true only with UnescapeAndRedirect when p held
// %2F or %5C: the caller should then redirect the client to norm (plus the
// query) instead of serving the request. A p that is already normal (the
// common case) is returned as is, without allocating. Normalize is safe for
// concurrent use.
func (o Options) Normalize(p string) (norm string, redirect bool, err error) {
	normal, err := o.check(p)
	if err != nil {
		return "", false, err
	}
	if normal {
		return p, false, nil
	}
	return o.rewrite(p)
}

// Byte classes, one table lookup per byte on the hot path.
const (
	clsRaw        = 1 << iota // may stay as it is in a normal path (pchar, '/')
	clsUnreserved             // RFC 3986 unreserved: decoded when percent-encoded
	clsHex                    // a hex digit
	clsUpperHex               // 0-9, A-F
)

var classes = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= clsRaw | clsUnreserved
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= clsRaw | clsUnreserved
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= clsRaw | clsUnreserved | clsHex | clsUpperHex
	}
	for _, c := range "-._~" {
		t[c] |= clsRaw | clsUnreserved
	}
	// sub-delims, ':' and '@' (the rest of pchar) and the separator.
	for _, c := range "!$&'()*+,;=:@/" {
		t[c] |= clsRaw
	}
	for _, c := range "abcdef" {
		t[c] |= clsHex
	}
	for _, c := range "ABCDEF" {
		t[c] |= clsHex | clsUpperHex
	}
	return t
}()

func isControl(c byte) bool { return c < 0x20 || c == 0x7f }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	default:
		return c - '0'
	}
}

const upperHex = "0123456789ABCDEF"

func badAt(err error, i int) error { return fmt.Errorf("%w (at byte %d)", err, i) }

// check validates p and reports whether it is already in normal form. It
// never allocates unless p is refused.
func (o Options) check(p string) (normal bool, err error) {
	if p == "" || p[0] != '/' {
		return false, badAt(ErrNotOriginForm, 0)
	}
	normal = true
	seg := 1 // start of the current segment
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			s := p[seg:i]
			switch {
			case !o.NoNormalize && (s == "." || s == ".."):
				normal = false
			case !o.KeepDoubleSlashes && s == "" && i < len(p):
				normal = false // an empty segment before another one: "//"
			}
			seg = i + 1
			continue
		}
		c := p[i]
		cls := classes[c]
		switch {
		case c == '%':
			if i+2 >= len(p) {
				return false, badAt(ErrInvalidEscape, i)
			}
			h1, h2 := p[i+1], p[i+2]
			if classes[h1]&clsHex == 0 || classes[h2]&clsHex == 0 {
				return false, badAt(ErrInvalidEscape, i)
			}
			v := unhex(h1)<<4 | unhex(h2)
			switch {
			case v == 0:
				return false, badAt(ErrControl, i)
			case v == '/' || v == '\\':
				switch o.EscapedSlashes {
				case RejectEscapedSlashes:
					return false, badAt(ErrEscapedSlash, i)
				case KeepEscapedSlashes:
					if !o.NoNormalize && classes[h1]&classes[h2]&clsUpperHex == 0 {
						normal = false
					}
				default:
					normal = false
				}
			case o.NoNormalize:
			case classes[v]&clsUnreserved != 0, classes[h1]&classes[h2]&clsUpperHex == 0:
				normal = false
			}
			i += 2
		case cls&clsRaw != 0:
		case isControl(c):
			return false, badAt(ErrControl, i)
		case c == '#' || c == '?':
			return false, badAt(ErrQueryOrFragment, i)
		case !o.NoNormalize:
			normal = false // a backslash, or a byte to percent-encode
		}
	}
	return normal, nil
}

// rewrite builds the normal form of p, which check has validated.
func (o Options) rewrite(p string) (string, bool, error) {
	// Pass 1: escapes and single bytes, into buf. Afterwards every '/' in
	// buf is a separator, and an encoded dot is a '.'. A byte grows to at
	// most three.
	buf := make([]byte, 0, 3*len(p))
	redirect := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			h1, h2 := p[i+1], p[i+2]
			v := unhex(h1)<<4 | unhex(h2)
			i += 2
			switch {
			case (v == '/' || v == '\\') && o.EscapedSlashes != KeepEscapedSlashes:
				// Unescape: the decoded byte is a separator from here on,
				// as in Envoy, where normalization runs after the unescape.
				redirect = o.EscapedSlashes == UnescapeAndRedirect
				if v == '\\' && o.NoNormalize {
					buf = append(buf, '\\')
				} else {
					buf = append(buf, '/')
				}
			case o.NoNormalize:
				buf = append(buf, '%', h1, h2)
			case classes[v]&clsUnreserved != 0:
				buf = append(buf, v)
			default:
				buf = append(buf, '%', upperHex[v>>4], upperHex[v&15])
			}
		case o.NoNormalize || classes[c]&clsRaw != 0:
			buf = append(buf, c)
		case c == '\\':
			buf = append(buf, '/')
		default:
			buf = append(buf, '%', upperHex[c>>4], upperHex[c&15])
		}
	}

	// Pass 2, in place: remove dot segments (RFC 3986 §5.2.4). out =
	// buf[:w] always reads "/seg/seg..."; it only shrinks or copies a
	// segment from further right, so copy's overlap handling keeps it
	// correct. Empty segments count here ("/a//../b" is "/a/b", as in RFC
	// 3986 and Envoy, which merges slashes after normalizing).
	w := 0
	seg := 1
	n := len(buf)
	for i := 1; i <= n; i++ {
		if i < n && buf[i] != '/' {
			continue
		}
		s := buf[seg:i]
		last := i == n
		seg = i + 1
		switch {
		case !o.NoNormalize && len(s) == 1 && s[0] == '.':
		case !o.NoNormalize && len(s) == 2 && s[0] == '.' && s[1] == '.':
			// Drop the last segment of out and its '/'.
			for w > 0 {
				w--
				if buf[w] == '/' {
					break
				}
			}
		default:
			buf[w] = '/'
			w++
			w += copy(buf[w:], s)
			continue
		}
		if last {
			// A path that ended in ".", ".." or "/" keeps its trailing
			// slash ("/a/b/.." is "/a/", as in RFC 3986).
			buf[w] = '/'
			w++
		}
	}
	if w == 0 {
		return "/", redirect, nil
	}
	if !o.KeepDoubleSlashes {
		// Pass 3: merge runs of slashes.
		m := 1
		for i := 1; i < w; i++ {
			if buf[i] == '/' && buf[m-1] == '/' {
				continue
			}
			buf[m] = buf[i]
			m++
		}
		w = m
	}
	return string(buf[:w]), redirect, nil
}
