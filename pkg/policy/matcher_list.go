package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// listOperator is one operator of the list matcher, which tests a list of
// values (groups, claim values) against one value.
type listOperator struct {
	name string
	// strings and claims return the operator's test for value v, over
	// groups and over typed claim values; the tests must not allocate.
	strings func(v string) func([]string) bool
	claims  func(v ClaimValue) func([]ClaimValue) bool
}

// listOperators are the list matcher's operators, in the order messages
// list them.
var listOperators = []listOperator{
	{opHas, listHas[string], listHas[ClaimValue]},
	{opIs, listIs[string], listIs[ClaimValue]},
	{opExclude, listExclude[string], listExclude[ClaimValue]},
}

var listOperatorNames = operatorNames(listOperators, func(o listOperator) string { return o.name })

func lookupListOperator(name string) (listOperator, bool) {
	for _, o := range listOperators {
		if o.name == name {
			return o, true
		}
	}
	return listOperator{}, false
}

// listValue is the value kind of criteria that take a list matcher
// (Criterion.List).
type listValue struct{}

func (listValue) parse(c *Criterion, key string, v *yaml.Node) (err error) {
	c.List, err = parseListMatcher(key, v)
	return err
}

func (listValue) check(c *Criterion) error {
	if c.List == nil || len(c.List.Ops) == 0 {
		return astError(c, "criterion %q has no matcher", c.Name)
	}
	for _, op := range c.List.Ops {
		switch _, ok := lookupListOperator(op.Op); {
		case !ok:
			return astError(c, "matcher %q of criterion %q is unknown", op.Op, c.Name)
		case len(op.Values) != 1:
			return astError(c, "matcher %q of criterion %q has %d values", op.Op, c.Name, len(op.Values))
		case op.Type > JSONObject:
			return astError(c, "matcher %q of criterion %q has an unknown value type %d", op.Op, c.Name, op.Type)
		}
	}
	return nil
}

// parseListMatcher parses a list matcher: a bare string is {has: value}.
// Every operator compares one value; a list is refused with a message
// saying how to write "any of" (or) or "none of" (and).
func parseListMatcher(name string, n *yaml.Node) (*ListMatcher, error) {
	what := fmt.Sprintf("criterion %q", name)
	switch n.Kind {
	case yaml.ScalarNode:
		op, err := listOperand(opHas, n, what)
		if err != nil {
			return nil, err
		}
		return &ListMatcher{Ops: []ListOp{op}}, nil
	case yaml.SequenceNode:
		// Pomerium reads a bare value as {has: value}, and has compares
		// each element with the whole list: it would never match.
		return nil, errorf(n, "%s takes a string, not a list%s", what, listOperandHint(name, opHas, n, false))
	}
	ps, err := pairs(n, what)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, errorf(n, "%s has no matcher; use one of %s", what, strings.Join(listOperatorNames, ", "))
	}
	m := &ListMatcher{}
	for _, p := range ps {
		o, ok := lookupListOperator(p.key)
		if !ok {
			return nil, errorf(p.keyN, "matcher %q of criterion %q is unknown%s; list matchers are %s",
				p.key, name, suggest(p.key, listOperatorNames), strings.Join(listOperatorNames, ", "))
		}
		opWhat := fmt.Sprintf("matcher %q of criterion %q", p.key, name)
		if p.value.Kind == yaml.SequenceNode {
			return nil, errorf(p.value, "%s takes a string, not a list%s", opWhat, listOperandHint(name, o.name, p.value, false))
		}
		op, err := listOperand(o.name, p.value, opWhat)
		if err != nil {
			return nil, err
		}
		m.Ops = append(m.Ops, op)
	}
	return m, nil
}

// listOperand parses the one value of a list operator with its JSON type:
// YAML booleans and numbers are typed as JSON has them (in canonical
// text), anything else is a string.
func listOperand(op string, n *yaml.Node, what string) (ListOp, error) {
	s, err := scalar(n, what)
	if err != nil {
		return ListOp{}, err
	}
	lo := ListOp{Op: op, Values: []string{s}, Type: JSONString}
	switch n.Tag {
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			lo.Values[0], lo.Type = strconv.FormatBool(b), JSONBool
		}
	case "!!int", "!!float":
		var f float64
		if n.Decode(&f) == nil {
			lo.Values[0], lo.Type = NumberClaim(f).Text, JSONNumber
		}
	}
	return lo, nil
}

// compileListMatcher returns the test of a checked list matcher: all of
// its operators must hold. op picks the operator's test for T.
func compileListMatcher[T any](m *ListMatcher, op func(listOperator, ListOp) func([]T) bool) func([]T) bool {
	fs := make([]func([]T) bool, 0, len(m.Ops))
	for _, lo := range m.Ops {
		o, _ := lookupListOperator(lo.Op) // checked by listValue.check
		fs = append(fs, op(o, lo))
	}
	if len(fs) == 1 {
		return fs[0]
	}
	return func(l []T) bool {
		for _, f := range fs {
			if !f(l) {
				return false
			}
		}
		return true
	}
}

// listHas: the list contains v.
func listHas[T comparable](v T) func([]T) bool {
	return func(l []T) bool { return slices.Contains(l, v) }
}

// listExclude: the list does not contain v.
func listExclude[T comparable](v T) func([]T) bool {
	return func(l []T) bool { return !slices.Contains(l, v) }
}

// listIs: the list is exactly [v].
func listIs[T comparable](v T) func([]T) bool {
	return func(l []T) bool { return len(l) == 1 && l[0] == v }
}
