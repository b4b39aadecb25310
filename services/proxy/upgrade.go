package proxy

import (
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// The Upgrade protocols a route can tunnel, the upgrade_types Pomerium
// gives Envoy for allow_websockets and allow_spdy. A tunnel is authorized
// once, at its handshake; nothing inside it is seen again, so only these
// two are ever opened.
const (
	upgradeWebsocket = "websocket"
	upgradeSPDY      = "spdy/3.1"
	// upgradeH2C asks to switch a cleartext HTTP/1.1 connection to
	// HTTP/2. Envoy drops it from the request (h2c upgrades are not
	// supported) and serves the request as HTTP/1.1; so does gatehouse.
	upgradeH2C = "h2c"
)

// routeUpgrades returns the Upgrade protocols r tunnels.
func routeUpgrades(r *config.Route) []string {
	var out []string
	// kubectl exec, attach and port-forward need them: Pomerium enables
	// both on Kubernetes API routes.
	if r.AllowWebsockets || r.IsForKubernetes() {
		out = append(out, upgradeWebsocket)
	}
	if r.AllowSPDY || r.IsForKubernetes() {
		out = append(out, upgradeSPDY)
	}
	return out
}

// isUpgrade reports whether r asks to switch protocols: it has an Upgrade
// header and Connection names "upgrade". It reads both exactly as
// httputil.ReverseProxy does, so that no request it lets pass as plain is
// tunnelled by ReverseProxy.
func isUpgrade(r *http.Request) bool {
	_, ok := r.Header["Upgrade"]
	return ok && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "Upgrade")
}

// admitUpgrade decides a request's protocol switch on rt, as Envoy does
// with Pomerium's upgrade_configs: a request that asks for none passes; an
// h2c upgrade is removed and the request passes as plain HTTP/1.1; an
// upgrade to exactly one protocol the route allows (compared without
// case) passes, to be tunnelled after authorize allows it; anything else
// (another protocol, a list of them, several Upgrade headers) is refused,
// and the caller answers 403, Envoy's status for an upgrade it is not
// configured for.
func (rt *route) admitUpgrade(r *http.Request) bool {
	if _, ok := r.Header[":protocol"]; ok {
		// HTTP/2 extended CONNECT (RFC 8441), off by default in Go's
		// server: never tunnelled.
		return false
	}
	if !isUpgrade(r) {
		return true // a lone Upgrade header is hop-by-hop: ReverseProxy drops it
	}
	vs := r.Header["Upgrade"]
	if len(vs) != 1 {
		return false
	}
	proto := vs[0] // as ReverseProxy will send it: no trimming
	if strings.EqualFold(proto, upgradeH2C) {
		r.Header.Del("Upgrade")
		r.Header.Del("Http2-Settings")
		return true
	}
	for _, u := range rt.upgrades {
		if strings.EqualFold(proto, u) {
			return true
		}
	}
	return false
}
