package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// Transport tuning. An identity-aware proxy sits in front of a few busy
// upstreams, so it keeps many idle connections per upstream rather than
// opening new ones under load.
const (
	maxIdleConnsPerHost = 256
	maxIdleConns        = 4096
	idleConnTimeout     = 90 * time.Second
	dialTimeout         = 10 * time.Second
	keepAlive           = 30 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	// downFor is how long an upstream that refused a connection is skipped.
	downFor = 30 * time.Second
)

// transportKey identifies the settings that make two routes' transports
// differ: TLS verification and identity, and the response header timeout.
// Routes with the same key share one http.Transport, and so its pool of
// connections.
type transportKey struct {
	skipVerify     bool
	renegotiate    bool // tls_upstream_allow_renegotiation
	h2c            bool // h2c:// upstreams: HTTP/2 with prior knowledge, no TLS
	serverName     string
	caHash         string // hash of tls_custom_ca, "" for the system roots (plus certificate_authority)
	clientCertHash string // hash of tls_client_cert + key
	headerTimeout  time.Duration
}

// transportCache hands out shared transports by key and keeps them across
// configuration reloads, so a reload does not drop pooled connections.
type transportCache struct {
	mu sync.Mutex
	m  map[transportKey]*http.Transport
}

func newTransportCache() *transportCache {
	return &transportCache{m: map[transportKey]*http.Transport{}}
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// routeTransportKey returns the key of r's transport.
func routeTransportKey(cfg *config.Config, r *config.Route) transportKey {
	k := transportKey{skipVerify: r.TLSSkipVerify, serverName: r.UpstreamServerName(),
		renegotiate: r.TLSUpstreamAllowRenegotiation, h2c: r.H2C()}
	if r.TLSCustomCA != "" {
		k.caHash = hashOf(r.TLSCustomCA)
	}
	if r.TLSClientCert != "" {
		k.clientCertHash = hashOf(r.TLSClientCert, r.TLSClientKey)
	}
	k.headerTimeout = cfg.DefaultUpstreamTimeout.Std()
	if r.Timeout != nil {
		k.headerTimeout = r.Timeout.Std() // 0 turns the timeout off, as in Pomerium
	}
	return k
}

// get returns the transport for r, creating it on first use.
func (c *transportCache) get(cfg *config.Config, r *config.Route) (*http.Transport, error) {
	key := routeTransportKey(cfg, r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.m[key]; ok {
		return t, nil
	}
	tlsConf := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: r.TLSSkipVerify, //nolint:gosec // tls_skip_verify is the operator's explicit choice
		ServerName:         key.serverName,
		RootCAs:            cfg.CAPool,
	}
	if key.renegotiate {
		// Envoy's allow_renegotiation: the upstream may ask for a new
		// handshake (TLS 1.2 only; Go refuses it on HTTP/2 connections).
		tlsConf.Renegotiation = tls.RenegotiateFreelyAsClient
	}
	if pool := r.TLSCustomCAPool(); pool != nil {
		tlsConf.RootCAs = pool
	}
	crt, err := r.TLSClientCertificate()
	if err != nil {
		return nil, err
	}
	if crt != nil {
		tlsConf.Certificates = []tls.Certificate{*crt}
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	t := &http.Transport{
		Proxy:                 nil, // never an environment proxy between gatehouse and its upstreams
		DialContext:           d.DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ForceAttemptHTTP2:     true, // for https upstreams (h2 via ALPN); plain http stays HTTP/1.1
		MaxIdleConns:          maxIdleConns,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		ResponseHeaderTimeout: key.headerTimeout,
		ExpectContinueTimeout: time.Second,
		// Responses pass through as the upstream sent them.
		DisableCompression: true,
	}
	if key.h2c {
		// h2c:// upstreams (gRPC servers, for one) speak HTTP/2 over plain
		// TCP from the first byte; the balancer gives their URLs the http
		// scheme, which this transport then sends as HTTP/2.
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	c.m[key] = t
	return t, nil
}

// retain closes the idle connections of the transports not in keep and
// forgets them; busy connections finish normally.
func (c *transportCache) retain(keep map[transportKey]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, t := range c.m {
		if !keep[k] {
			t.CloseIdleConnections()
			delete(c.m, k)
		}
	}
}

func (c *transportCache) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.m {
		t.CloseIdleConnections()
	}
}

// upstream is one `to` URL of a route.
type upstream struct {
	url    *url.URL
	weight int
	// current is the smooth weighted round-robin counter, guarded by
	// balancer.mu.
	current int
	// downUntil is when a failed upstream may be tried again (Unix nanoseconds).
	downUntil atomic.Int64
	// active counts the requests in flight to it (least_request only).
	active atomic.Int64
	// seed is the hash of its address, for rendezvous hashing.
	seed uint64
}

// balancer picks a route's upstream by smooth weighted round-robin (as
// nginx does: weights 5,1,1 give a a b a c a a, never bursts), skipping
// upstreams that recently refused connections unless all of them have.
// It is safe for concurrent use.
type balancer struct {
	ups    []*upstream
	total  int
	policy config.LBPolicy
	// samePaths is true when every upstream has the same base path, so a
	// rewritten request can go to any of them.
	samePaths bool
	mu        sync.Mutex
}

func newBalancer(to []config.WeightedURL, policy config.LBPolicy) *balancer {
	b := &balancer{samePaths: true, policy: policy}
	for _, w := range to {
		if len(b.ups) > 0 && b.ups[0].url.EscapedPath() != w.URL.EscapedPath() {
			b.samePaths = false
		}
		weight := max(w.Weight, 1)
		u := w.URL
		if u.Scheme == "h2c" {
			// Sent as http:// by the route's h2c transport.
			c := *u
			c.Scheme = "http"
			u = &c
		}
		b.ups = append(b.ups, &upstream{url: u, weight: weight, seed: hash64(u.Host)})
		b.total += weight
	}
	return b
}

// pickFor returns the upstream for a request by the route's policy; key
// is what ring_hash and maglev hash (the session, else the client IP).
func (b *balancer) pickFor(key string) *upstream {
	if len(b.ups) == 1 {
		return b.ups[0]
	}
	switch b.policy {
	case config.LBRandom:
		return b.pickRandom()
	case config.LBLeastRequest:
		return b.pickLeastRequest()
	case config.LBRingHash, config.LBMaglev:
		return b.pickHash(key)
	}
	return b.pick()
}

// available returns the upstreams not marked down, or all of them when
// every one is.
func (b *balancer) available(now int64) []*upstream {
	up := make([]*upstream, 0, len(b.ups))
	for _, u := range b.ups {
		if u.downUntil.Load() <= now {
			up = append(up, u)
		}
	}
	if len(up) == 0 {
		return b.ups
	}
	return up
}

// pickRandom picks an available upstream at random, by weight.
func (b *balancer) pickRandom() *upstream {
	ups := b.available(time.Now().UnixNano())
	total := 0
	for _, u := range ups {
		total += u.weight
	}
	n := rand.IntN(total)
	for _, u := range ups {
		if n < u.weight {
			return u
		}
		n -= u.weight
	}
	return ups[len(ups)-1]
}

// pickLeastRequest picks two available upstreams at random and takes the
// one with fewer requests in flight for its weight (Envoy's P2C).
func (b *balancer) pickLeastRequest() *upstream {
	ups := b.available(time.Now().UnixNano())
	if len(ups) == 1 {
		return ups[0]
	}
	i := rand.IntN(len(ups))
	j := rand.IntN(len(ups) - 1)
	if j >= i {
		j++
	}
	a, c := ups[i], ups[j]
	// a.active/a.weight <= c.active/c.weight, without division.
	if a.active.Load()*int64(c.weight) <= c.active.Load()*int64(a.weight) {
		return a
	}
	return c
}

// pickHash picks by weighted rendezvous hashing of key: each available
// upstream scores -weight/ln(h(key, upstream)) and the best wins, so a key
// keeps its upstream as long as that one is up, and removing an upstream
// moves only its keys. An empty key (nothing to hash) goes round robin.
func (b *balancer) pickHash(key string) *upstream {
	if key == "" {
		return b.pick()
	}
	k := hash64(key)
	var best *upstream
	bestScore := math.Inf(-1)
	for _, u := range b.available(time.Now().UnixNano()) {
		h := mix64(k ^ u.seed)
		// A uniform float in (0, 1) from the top 53 bits.
		f := (float64(h>>11) + 0.5) / (1 << 53)
		score := -float64(u.weight) / math.Log(f)
		if score > bestScore {
			best, bestScore = u, score
		}
	}
	return best
}

// hash64 is FNV-1a of s, mixed.
func hash64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return mix64(h.Sum64())
}

// mix64 is SplitMix64's finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// byHost returns the upstream with the host, or nil.
func (b *balancer) byHost(host string) *upstream {
	for _, u := range b.ups {
		if u.url.Host == host {
			return u
		}
	}
	return nil
}

// pick returns the next upstream by smooth weighted round robin.
func (b *balancer) pick() *upstream {
	if len(b.ups) == 1 {
		return b.ups[0]
	}
	now := time.Now().UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	best := b.choose(now, false)
	if best == nil {
		best = b.choose(now, true) // every upstream is down: try them anyway
	}
	return best
}

func (b *balancer) choose(now int64, includeDown bool) *upstream {
	var best *upstream
	total := 0
	for _, u := range b.ups {
		if !includeDown && u.downUntil.Load() > now {
			continue
		}
		u.current += u.weight
		total += u.weight
		if best == nil || u.current > best.current {
			best = u
		}
	}
	if best != nil {
		best.current -= total
	}
	return best
}

// markDown records that u refused a connection.
func (b *balancer) markDown(host string) {
	for _, u := range b.ups {
		if u.url.Host == host {
			u.downUntil.Store(time.Now().Add(downFor).UnixNano())
			return
		}
	}
}

// isDialError reports whether err means no connection to the upstream
// could be made (nothing was sent).
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return false
}
