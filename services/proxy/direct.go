package proxy

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// newDirectRoute compiles a route whose requests get a redirect or a fixed
// response (its redirect or response option) instead of an upstream. Such
// a route has no proxy; serve still asks authorize first, as Envoy runs
// ext_authz before its redirect and direct-response actions.
func (s *Service) newDirectRoute(cfg *config.Config, r *config.Route, claimHeaders map[string]string) *route {
	rt := s.baseRoute(cfg, r, claimHeaders)
	rt.respHTTP, rt.respHTTPS = responseHeaders(cfg, r)
	return rt
}

// baseRoute is what every compiled route has, whether it proxies to an
// upstream or answers directly: its policy-facing settings and the
// headers gatehouse owns on it.
func (s *Service) baseRoute(cfg *config.Config, r *config.Route, claimHeaders map[string]string) *route {
	return &route{
		cfg:          r,
		passIdentity: cfg.PassIdentityHeadersFor(r),
		hops:         cfg.XFFNumTrustedHops,
		cookieName:   cfg.CookieName,
		logger:       s.logger,
		protected:    protectedHeaders(cfg, r),
		claimHeaders: claimHeaders,
		upgrades:     routeUpgrades(r),
	}
}

// serveDirect answers a request of a redirect or response route, with the
// route's response headers.
func (rt *route) serveDirect(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if rr := rt.cfg.Redirect; rr != nil {
		rt.setResponseHeaders(w, r, rt.hops)
		h.Set("Location", rt.redirectURL(r))
		rt.rewriteResponseHeaders(h)
		code := http.StatusMovedPermanently // Envoy's default
		if rr.ResponseCode != nil {
			code = int(*rr.ResponseCode)
		}
		w.WriteHeader(code)
		return
	}
	resp := rt.cfg.Response
	if resp.Body != "" {
		h.Set("Content-Type", "text/plain") // an Envoy local reply's type; set_response_headers may change it
	}
	rt.setResponseHeaders(w, r, rt.hops)
	rt.rewriteResponseHeaders(h)
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(resp.Status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, resp.Body)
	}
}

// redirectURL builds the Location of a redirect route as Envoy's redirect
// action does, from the request's normal path (the one the policy saw)
// and its query (without gatehouse's pomerium_* parameters).
func (rt *route) redirectURL(r *http.Request) string {
	rr := rt.cfg.Redirect
	origScheme := requestScheme(r, rt.hops)
	scheme := origScheme
	switch {
	case rr.HTTPSRedirect != nil:
		if *rr.HTTPSRedirect {
			scheme = "https"
		}
	case rr.SchemeRedirect != nil:
		scheme = *rr.SchemeRedirect
	}

	var host string
	if rr.HostRedirect != nil {
		host = *rr.HostRedirect
	} else {
		host = r.Host
		// Envoy drops the request's port when a new one is set, or when
		// the scheme changes and the port was the old scheme's default.
		if name, port, err := net.SplitHostPort(host); err == nil {
			if rr.PortRedirect != nil || (scheme != origScheme &&
				(origScheme == "https" && port == "443" || origScheme == "http" && port == "80")) {
				host = name
				if strings.Contains(name, ":") {
					host = "[" + name + "]"
				}
			}
		}
	}
	if rr.PortRedirect != nil {
		if name, _, err := net.SplitHostPort(host); err == nil {
			host = name
			if strings.Contains(name, ":") {
				host = "[" + name + "]"
			}
		}
		host += ":" + strconv.FormatUint(uint64(*rr.PortRedirect), 10)
	}

	p := requestPath(r)
	query := r.URL.RawQuery
	switch {
	case rr.PathRedirect != nil:
		p = *rr.PathRedirect
		if before, q, ok := strings.Cut(p, "?"); ok {
			// A query in path_redirect replaces the request's, and stays
			// whatever strip_query says.
			p = before
			return scheme + "://" + host + p + "?" + q
		}
	case rr.PrefixRewrite != nil:
		prefix := "/"
		switch {
		case rt.cfg.Prefix != "":
			prefix = rt.cfg.Prefix
		case rt.cfg.Path != "":
			prefix = rt.cfg.Path
		}
		if strings.HasPrefix(p, prefix) {
			p = *rr.PrefixRewrite + p[len(prefix):]
		}
	}
	if rr.StripQuery != nil && *rr.StripQuery {
		query = ""
	}
	u := scheme + "://" + host + p
	if query != "" {
		u += "?" + query
	}
	return u
}
