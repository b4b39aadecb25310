package policy

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// stringOperator is one operator of the string matcher.
type stringOperator struct {
	name    string
	operand operand // operandString (StringOp.Value) or operandList (StringOp.Values)
	// compile returns the operator's test. With fold it ignores case;
	// the test must not allocate.
	compile func(op StringOp, fold bool) func(string) bool
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

// parseStringMatcher parses a string matcher: a bare string is {is: s}, a
// bare list {in: list}.
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
		vs, err := scalars(n, what)
		if err != nil {
			return nil, err
		}
		return &StringMatcher{Ops: []StringOp{{Op: opIn, Values: vs}}}, nil
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
		s, err := scalar(p.value, opWhat)
		if err != nil {
			return nil, err
		}
		m.Ops = append(m.Ops, StringOp{Op: o.name, Value: s})
	}
	return m, nil
}

// compileStringMatcher returns the test of a checked string matcher: all
// of its operators must hold. With fold it ignores case.
func compileStringMatcher(m *StringMatcher, fold bool) func(string) bool {
	fs := make([]func(string) bool, 0, len(m.Ops))
	for _, op := range m.Ops {
		o, _ := lookupStringOperator(op.Op) // checked by stringValue.check
		fs = append(fs, o.compile(op, fold))
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

// foldValue returns op.Value, lower-cased with fold.
func foldValue(op StringOp, fold bool) string {
	if fold {
		return strings.ToLower(op.Value)
	}
	return op.Value
}

func compileStringIs(op StringOp, fold bool) func(string) bool {
	v := foldValue(op, fold)
	if fold {
		return func(s string) bool { return strings.EqualFold(s, v) }
	}
	return func(s string) bool { return s == v }
}

func compileStringNot(op StringOp, fold bool) func(string) bool {
	v := foldValue(op, fold)
	if fold {
		return func(s string) bool { return !strings.EqualFold(s, v) }
	}
	return func(s string) bool { return s != v }
}

func compileStringContains(op StringOp, fold bool) func(string) bool {
	v := foldValue(op, fold)
	if fold {
		return func(s string) bool { return containsFold(s, v) }
	}
	return func(s string) bool { return strings.Contains(s, v) }
}

func compileStringStartsWith(op StringOp, fold bool) func(string) bool {
	v := foldValue(op, fold)
	if fold {
		return func(s string) bool { return len(s) >= len(v) && strings.EqualFold(s[:len(v)], v) }
	}
	return func(s string) bool { return strings.HasPrefix(s, v) }
}

func compileStringEndsWith(op StringOp, fold bool) func(string) bool {
	v := foldValue(op, fold)
	if fold {
		return func(s string) bool { return len(s) >= len(v) && strings.EqualFold(s[len(s)-len(v):], v) }
	}
	return func(s string) bool { return strings.HasSuffix(s, v) }
}

func compileStringIn(op StringOp, fold bool) func(string) bool {
	return compileSet(op.Values, fold)
}

func compileStringNotIn(op StringOp, fold bool) func(string) bool {
	in := compileSet(op.Values, fold)
	return func(s string) bool { return !in(s) }
}

// hashThreshold is the list length from which a set uses a map instead of
// a linear scan.
const hashThreshold = 8

// compileSet returns a membership test for values: a linear scan for
// short lists, a map for long ones.
func compileSet(values []string, fold bool) func(string) bool {
	vs := slices.Clone(values)
	if fold {
		for i := range vs {
			vs[i] = strings.ToLower(vs[i])
		}
	}
	if len(vs) < hashThreshold {
		if fold {
			return func(s string) bool {
				for _, v := range vs {
					if strings.EqualFold(s, v) {
						return true
					}
				}
				return false
			}
		}
		return func(s string) bool { return slices.Contains(vs, s) }
	}
	set := make(map[string]struct{}, len(vs))
	for _, v := range vs {
		set[v] = struct{}{}
	}
	if !fold {
		return func(s string) bool { _, ok := set[s]; return ok }
	}
	return func(s string) bool {
		// Lower-case into a stack buffer; m[string(b)] does not allocate.
		var buf [128]byte
		if b, ok := lowerASCII(buf[:0], s); ok {
			_, hit := set[string(b)]
			return hit
		}
		_, hit := set[strings.ToLower(s)] // long or non-ASCII: rare, may allocate
		return hit
	}
}

// lowerASCII appends the lower-case form of s to dst when s is ASCII and
// fits in dst's capacity.
func lowerASCII(dst []byte, s string) ([]byte, bool) {
	if len(s) > cap(dst) {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return nil, false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// containsFold reports whether substr (lower-case) is in s, ignoring case,
// without allocating.
func containsFold(s, substr string) bool {
	if substr == "" {
		return true
	}
	for i := 0; i+len(substr) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(substr)], substr) {
			return true
		}
	}
	return false
}
