package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse/gatehouse/pkg/policy"
)

// validatePolicy parses the route's PPL and compiles it with the route's
// shorthands, so that `gatehouse validate` catches every policy error and
// authorize gets a ready evaluator.
func (c *Config) validatePolicy(errs *Errors, i int, r *Route, key func(string) string, line func(string) int) {
	var policies []*policy.Policy
	if r.Policy != nil {
		switch r.Policy.Kind {
		case yaml.MappingNode, yaml.SequenceNode:
			p, err := policy.Parse(r.Policy)
			if err != nil {
				var pe *policy.Error
				if errors.As(err, &pe) && pe.Pos.Line > 0 {
					errs.add(key("policy"), pe.Pos.Line, pe.Msg)
				} else {
					errs.add(key("policy"), line("policy"), err.Error())
				}
				return
			}
			for _, w := range p.Warnings() {
				c.warnings = append(c.warnings, fmt.Sprintf("line %d: %s: %s", w.Pos.Line, key("policy"), w.Msg))
			}
			policies = append(policies, p)
		default:
			errs.add(key("policy"), line("policy"), fmt.Sprintf("expected a rule ({allow: ..., deny: ...}) or a list of rules, got %s", kindName(r.Policy)))
			return
		}
	}
	if c.mtlsDefaultDeny(r) {
		policies = append(policies, denyInvalidClientCertificate)
	}
	ev, err := policy.Compile(policy.Shorthands{
		AllowPublicUnauthenticatedAccess: r.AllowPublicUnauthenticatedAccess,
		AllowAnyAuthenticatedUser:        r.AllowAnyAuthenticatedUser,
		CORSAllowPreflight:               r.CORSAllowPreflight,
		AllowedUsers:                     r.AllowedUsers,
		AllowedDomains:                   r.AllowedDomains,
		AllowedIDPClaims:                 r.AllowedIDPClaims,
	}, policies...)
	if err != nil {
		errs.add(key("policy"), line("policy"), err.Error())
		return
	}
	r.Evaluator = ev
	if r.ID == "" {
		r.ID = r.derivedID()
	}
}

// derivedID identifies a route that has no `id` by what it matches, so the
// same route gets the same id in every process and across reloads.
func (r *Route) derivedID() string {
	h := sha256.Sum256([]byte(strings.Join([]string{r.From, r.Prefix, r.Path, r.Regex}, "\x00")))
	return "route-" + hex.EncodeToString(h[:8])
}
