package policy

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// listOperator is one operator of the list matcher, which tests a list of
// strings (groups, claim values).
type listOperator struct {
	name    string
	operand operand // operandString (one value) or operandStringOrList
	// compile returns the operator's test; it must not allocate.
	compile func(op ListOp) func([]string) bool
}

// listOperators are the list matcher's operators, in the order messages
// list them.
var listOperators = []listOperator{
	{opHas, operandStringOrList, compileListHas},
	{opIs, operandString, compileListIs},
	{opExclude, operandStringOrList, compileListExclude},
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
		case len(op.Values) == 0 || (o.operand == operandString && len(op.Values) != 1):
			return astError(c, "matcher %q of criterion %q has %d values", op.Op, c.Name, len(op.Values))
		}
	}
	return nil
}

// parseListMatcher parses a list matcher: a bare string or list is
// {has: value}.
func parseListMatcher(name string, n *yaml.Node) (*ListMatcher, error) {
	what := fmt.Sprintf("criterion %q", name)
	switch n.Kind {
	case yaml.ScalarNode, yaml.SequenceNode:
		vs, err := scalarOrList(n, what)
		if err != nil {
			return nil, err
		}
		return &ListMatcher{Ops: []ListOp{{Op: opHas, Values: vs}}}, nil
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
		var vs []string
		if o.operand == operandString {
			var s string
			s, err = scalar(p.value, opWhat)
			vs = []string{s}
		} else {
			vs, err = scalarOrList(p.value, opWhat)
		}
		if err != nil {
			return nil, err
		}
		m.Ops = append(m.Ops, ListOp{Op: o.name, Values: vs})
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

// compileListHas: the list contains one of op.Values.
func compileListHas(op ListOp) func([]string) bool {
	in := compileSet(op.Values)
	return func(l []string) bool {
		for _, x := range l {
			if in(x) {
				return true
			}
		}
		return false
	}
}

// compileListExclude: the list contains none of op.Values.
func compileListExclude(op ListOp) func([]string) bool {
	has := compileListHas(op)
	return func(l []string) bool { return !has(l) }
}

// compileListIs: the list is exactly [op.Values[0]].
func compileListIs(op ListOp) func([]string) bool {
	v := op.Values[0]
	return func(l []string) bool { return len(l) == 1 && l[0] == v }
}
