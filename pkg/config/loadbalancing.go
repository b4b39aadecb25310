package config

import (
	"fmt"
	"strings"
)

// LBPolicy is a route's load_balancing_policy: how the proxy picks one of
// the route's upstreams (weights from `to`'s url,weight apply to each).
type LBPolicy int

// The load_balancing_policy values, Envoy's names under Pomerium's option.
const (
	// LBRoundRobin takes the upstreams in turn, smooth weighted round
	// robin (the default, as in Envoy).
	LBRoundRobin LBPolicy = iota
	// LBRandom picks one at random, by weight.
	LBRandom
	// LBLeastRequest sends to the one with the fewest requests in flight
	// relative to its weight, among two picked at random (Envoy's "power
	// of two choices").
	LBLeastRequest
	// LBRingHash and LBMaglev are consistent hashing of the session (the
	// session handle the request carries), else of the client's IP, as
	// Pomerium hashes its routing key: one user stays on one upstream
	// while the set of upstreams stays the same, and a change moves only
	// the users of the upstream that changed. Both are weighted
	// rendezvous hashing in gatehouse; Envoy's two tables differ only in
	// build and lookup cost.
	LBRingHash
	LBMaglev
)

// LB returns the route's load_balancing_policy.
func (r *Route) LB() LBPolicy {
	p, _ := parseLBPolicy(r.LoadBalancingPolicy)
	return p
}

func parseLBPolicy(s string) (LBPolicy, error) {
	switch strings.ToLower(s) {
	case "", "round_robin":
		return LBRoundRobin, nil
	case "random":
		return LBRandom, nil
	case "least_request":
		return LBLeastRequest, nil
	case "ring_hash":
		return LBRingHash, nil
	case "maglev":
		return LBMaglev, nil
	}
	return LBRoundRobin, fmt.Errorf("expected round_robin, random, least_request, ring_hash or maglev, got %q", s)
}
