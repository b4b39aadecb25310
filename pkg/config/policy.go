package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// validatePolicy checks the shape of a route's PPL. The full parse and
// compile live in pkg/policy; this refuses what is not PPL-shaped at all.
func (c *Config) validatePolicy(errs *Errors, i int, r *Route, key func(string) string, line func(string) int) {
	if r.Policy == nil {
		return
	}
	n := r.Policy
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
	default:
		errs.add(key("policy"), line("policy"), fmt.Sprintf("expected a rule ({allow: ..., deny: ...}) or a list of rules, got %s", kindName(n)))
	}
}
