package policy

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// stringOperator is one operator of the string matcher.
type stringOperator struct {
	name    string
	operand operand // operandString (StringOp.Value) or operandList (StringOp.Values)
	// compile returns the operator's test, which compares exactly (as
	// Pomerium's Rego does) and must not allocate.
	compile func(op StringOp) func(string) bool
}

// stringOperators are the string matcher's operators, in the order
// messages list them.
var stringOperators = []stringOperator{
	{opIs, operandString, compileStringIs},
	{opNot, operandString, compileStringNot},
	{opIn, operandList, compileStringIn},
	{opNotIn, operandList, compileStringNotIn},
	{opContains, operandString, compileStringContains},
	{opStartsWith, operandString, compileStringStartsWith},
	{opEndsWith, operandString, compileStringEndsWith},
}

var stringOperatorNames = operatorNames(stringOperators, func(o stringOperator) string { return o.name })

func lookupStringOperator(name string) (stringOperator, bool) {
	for _, o := range stringOperators {
		if o.name == name {
			return o, true
		}
	}
	return stringOperator{}, false
}

// stringValue is the value kind of criteria that take a string matcher
// (Criterion.String).
type stringValue struct{}

func (stringValue) parse(c *Criterion, _ string, v *yaml.Node) (err error) {
	c.String, err = parseStringMatcher(c.Name, v)
	return err
}

func (stringValue) check(c *Criterion) error {
	if c.String == nil || len(c.String.Ops) == 0 {
		return astError(c, "criterion %q has no matcher", c.Name)
	}
	for _, op := range c.String.Ops {
		o, ok := lookupStringOperator(op.Op)
		switch {
		case !ok:
			return astError(c, "matcher %q of criterion %q is unknown", op.Op, c.Name)
		case o.operand == operandList && len(op.Values) == 0:
			return astError(c, "matcher %q of criterion %q has no values", op.Op, c.Name)
		}
	}
	return nil
}

// parseStringMatcher parses a string matcher: a bare string is {is: s}.
// A list is refused wherever one value is compared (bare, is, not,
// contains, ...): Pomerium would compare it whole and never match.
func parseStringMatcher(name string, n *yaml.Node) (*StringMatcher, error) {
	what := fmt.Sprintf("criterion %q", name)
	switch n.Kind {
	case yaml.ScalarNode:
		s, err := scalar(n, what)
		if err != nil {
			return nil, err
		}
		return &StringMatcher{Ops: []StringOp{{Op: opIs, Value: s}}}, nil
	case yaml.SequenceNode:
		// Pomerium reads a bare value as {is: value}: a list would be
		// compared whole and never match.
		return nil, errorf(n, "%s takes a string, not a list%s", what, listOperandHint(name, opIs, n, true))
	}
	ps, err := pairs(n, what)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, errorf(n, "%s has no matcher; use one of %s", what, strings.Join(stringOperatorNames, ", "))
	}
	m := &StringMatcher{}
	for _, p := range ps {
		o, ok := lookupStringOperator(p.key)
		if !ok {
			return nil, errorf(p.keyN, "matcher %q of criterion %q is unknown%s; string matchers are %s",
				p.key, name, suggest(p.key, stringOperatorNames), strings.Join(stringOperatorNames, ", "))
		}
		opWhat := fmt.Sprintf("matcher %q of criterion %q", p.key, name)
		if o.operand == operandList {
			vs, err := scalars(p.value, opWhat)
			if err != nil {
				return nil, err
			}
			m.Ops = append(m.Ops, StringOp{Op: o.name, Values: vs})
			continue
		}
		if p.value.Kind == yaml.SequenceNode {
			return nil, errorf(p.value, "%s takes a string, not a list%s", opWhat, listOperandHint(name, o.name, p.value, true))
		}
		s, err := scalar(p.value, opWhat)
		if err != nil {
			return nil, err
		}
		m.Ops = append(m.Ops, StringOp{Op: o.name, Value: s})
	}
	return m, nil
}

// compileStringMatcher returns the test of a checked string matcher: all
// of its operators must hold.
func compileStringMatcher(m *StringMatcher) func(string) bool {
	fs := make([]func(string) bool, 0, len(m.Ops))
	for _, op := range m.Ops {
		o, _ := lookupStringOperator(op.Op) // checked by stringValue.check
		fs = append(fs, o.compile(op))
	}
	if len(fs) == 1 {
		return fs[0]
	}
	return func(s string) bool {
		for _, f := range fs {
			if !f(s) {
				return false
			}
		}
		return true
	}
}

func compileStringIs(op StringOp) func(string) bool {
	v := op.Value
	return func(s string) bool { return s == v }
}

func compileStringNot(op StringOp) func(string) bool {
	v := op.Value
	return func(s string) bool { return s != v }
}

func compileStringContains(op StringOp) func(string) bool {
	v := op.Value
	return func(s string) bool { return strings.Contains(s, v) }
}

func compileStringStartsWith(op StringOp) func(string) bool {
	v := op.Value
	return func(s string) bool { return strings.HasPrefix(s, v) }
}

func compileStringEndsWith(op StringOp) func(string) bool {
	v := op.Value
	return func(s string) bool { return strings.HasSuffix(s, v) }
}

func compileStringIn(op StringOp) func(string) bool {
	return compileSet(op.Values)
}

func compileStringNotIn(op StringOp) func(string) bool {
	in := compileSet(op.Values)
	return func(s string) bool { return !in(s) }
}

// hashThreshold is the list length from which a set uses a map instead of
// a linear scan.
const hashThreshold = 8

// compileSet returns a membership test for values: a linear scan for
// short lists, a map for long ones.
func compileSet(values []string) func(string) bool {
	vs := slices.Clone(values)
	if len(vs) < hashThreshold {
		return func(s string) bool { return slices.Contains(vs, s) }
	}
	set := make(map[string]struct{}, len(vs))
	for _, v := range vs {
		set[v] = struct{}{}
	}
	return func(s string) bool { _, ok := set[s]; return ok }
}
