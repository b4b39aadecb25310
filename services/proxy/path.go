package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/pkg/pathnorm"
)

// normalizeRequestPath puts the request's path into its normal form
// (pkg/pathnorm, with the configuration's normalize_path, merge_slashes and
// path_with_escaped_slashes_action), once, before anything reads it: the
// proxy's own endpoints, the route matcher, the Check sent to authorize,
// the rewrites and the upstream's request line all see that one string,
// so none of them can read a request as another path than the rest
// (Envoy does the same in its HTTP connection manager, for Pomerium).
//
// It works on the request target exactly as the client sent it
// (r.RequestURI), not on net/http's decoded r.URL.Path, which has already
// turned %2F into / and cannot tell them apart. The query is split off at
// the first '?' and kept byte for byte.
//
// On success it stores the normal path in r.URL.RawPath (always, so that
// r.URL.EscapedPath() and the upstream request line use that spelling;
// otherwise net/url would re-escape sub-delims such as '!') and its
// decoding in r.URL.Path, and returns it. Otherwise it has answered the
// client (400, or 307 for unescape_and_redirect) and returns "" with the
// decision for the access log. An already-normal path costs no allocation.
func normalizeRequestPath(w http.ResponseWriter, r *http.Request, o pathnorm.Options, reqID string) (norm string, refused decision) {
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI() // a request built in this process
	}
	raw, query, hasQuery := strings.Cut(target, "?")
	norm, redirect, err := o.Normalize(raw)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, pathErrorMessage(err), reqID)
		return "", decisionInvalid
	}
	if redirect {
		// Envoy's unescape_and_redirect: send the client to the path with
		// plain slashes, so every hop after this one sees that path.
		// A relative Location, never one starting with // (which a
		// browser reads as another host).
		if strings.HasPrefix(norm, "//") || strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			writeError(w, r, http.StatusBadRequest, msgEscapedSlash, reqID)
			return "", decisionInvalid
		}
		loc := norm
		if hasQuery {
			loc += "?" + query
		}
		w.Header().Set("Location", loc)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusTemporaryRedirect)
		return "", decisionRedirect
	}
	if norm != raw {
		// r.URL.Path is net/http's decoding of raw; redo it for norm.
		if strings.IndexByte(norm, '%') < 0 {
			r.URL.Path = norm
		} else if dec, err := url.PathUnescape(norm); err == nil { // never fails: Normalize validated norm
			r.URL.Path = dec
		}
		if hasQuery {
			r.RequestURI = norm + "?" + query
		} else {
			r.RequestURI = norm
		}
	}
	r.URL.RawPath = norm
	return norm, ""
}

// requestPath returns r's normal path, which normalizeRequestPath stored in
// r.URL.RawPath, without allocating.
func requestPath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.EscapedPath()
}

const msgEscapedSlash = "The request path contains an encoded slash (%2F) or backslash (%5C). " +
	"gatehouse refuses such paths (path_with_escaped_slashes_action): applications disagree on whether they separate path segments."

// pathErrorMessage is the page text for a refused path. It never echoes the
// path.
func pathErrorMessage(err error) string {
	switch {
	case errors.Is(err, pathnorm.ErrEscapedSlash):
		return msgEscapedSlash
	case errors.Is(err, pathnorm.ErrControl):
		return "The request path is not valid: it contains a control character (such as %00 or a newline)."
	case errors.Is(err, pathnorm.ErrInvalidEscape):
		return "The request path is not valid: a % is not followed by two hexadecimal digits."
	case errors.Is(err, pathnorm.ErrQueryOrFragment):
		return "The request path is not valid: it contains a '#'."
	default:
		return "The request path is not valid: it must be an absolute path starting with /."
	}
}
