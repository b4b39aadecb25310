package policy

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// listOperator is one operator of the list matcher, which tests a list of
// strings (groups, claim values).
type listOperator struct {
	name    string
	operand operand // operandString: every list operator compares one value
	// compile returns the operator's test; it must not allocate.
	compile func(op ListOp) func([]string) bool
}

// listOperators are the list matcher's operators, in the order messages
// list them.
var listOperators = []listOperator{
	{opHas, operandString, compileListHas},
	{opIs, operandString, compileListIs},
	{opExclude, operandString, compileListExclude},
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
		o, ok := lookupListOperator(op.Op)
		switch {
		case !ok:
			return astError(c, "matcher %q of criterion %q is unknown", op.Op, c.Name)
		case o.operand == operandString && len(op.Values) != 1:
			return astError(c, "matcher %q of criterion %q has %d values", op.Op, c.Name, len(op.Values))
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
		v, err := scalar(n, what)
		if err != nil {
			return nil, err
		}
		return &ListMatcher{Ops: []ListOp{{Op: opHas, Values: []string{v}}}}, nil
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
		v, err := scalar(p.value, opWhat)
		if err != nil {
			return nil, err
		}
		m.Ops = append(m.Ops, ListOp{Op: o.name, Values: []string{v}})
	}
	return m, nil
}

// compileListMatcher returns the test of a checked list matcher: all of
// its operators must hold.
func compileListMatcher(m *ListMatcher) func([]string) bool {
	fs := make([]func([]string) bool, 0, len(m.Ops))
	for _, op := range m.Ops {
		o, _ := lookupListOperator(op.Op) // checked by listValue.check
		fs = append(fs, o.compile(op))
	}
	if len(fs) == 1 {
		return fs[0]
	}
	return func(l []string) bool {
		for _, f := range fs {
			if !f(l) {
				return false
			}
		}
		return true
	}
}

// compileListHas: the list contains op.Values[0].
func compileListHas(op ListOp) func([]string) bool {
	v := op.Values[0]
	return func(l []string) bool { return slices.Contains(l, v) }
}

// compileListExclude: the list does not contain op.Values[0].
func compileListExclude(op ListOp) func([]string) bool {
	v := op.Values[0]
	return func(l []string) bool { return !slices.Contains(l, v) }
}

// compileListIs: the list is exactly [op.Values[0]].
func compileListIs(op ListOp) func([]string) bool {
	v := op.Values[0]
	return func(l []string) bool { return len(l) == 1 && l[0] == v }
}
