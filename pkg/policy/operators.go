package policy

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Logical operator names: the keys of an action.
const (
	logicAnd = "and"
	logicOr  = "or"
	logicNot = "not"
	logicNor = "nor"
)

// logicalOperators are the logical operators in the order messages list
// them.
var logicalOperators = []string{logicAnd, logicOr, logicNot, logicNor}

// Matcher operator names, as PPL spells them; every other place in the
// package refers to these. The string matcher's operators are listed in
// stringOperators (matcher_string.go), the list matcher's in
// listOperators (matcher_list.go); the time criteria use after, before,
// is and timezone.
const (
	opIs         = "is"
	opNot        = "not"
	opIn         = "in"
	opNotIn      = "not_in"
	opContains   = "contains"
	opStartsWith = "starts_with"
	opEndsWith   = "ends_with"
	opHas        = "has"
	opExclude    = "exclude"
	opAfter      = "after"
	opBefore     = "before"
	opTimezone   = "timezone"
)

// operand is what a matcher operator takes.
type operand int

const (
	operandString operand = iota // one string
	operandList                  // a non-empty list of strings
)

// operatorNames returns the names of ops, in order.
func operatorNames[T any](ops []T, name func(T) string) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = name(o)
	}
	return out
}

// listOperandHint returns the text that follows "takes a string, not a
// list" when a policy gives a list where PPL compares one value: Pomerium
// would compare the whole list as one value (never equal, so has never
// holds and exclude always does). It says what to write instead, with the
// policy's own values: in for the string matcher, or one criterion per
// value under or (has, is, contains, ...) or and (exclude), or in / not_in
// for the string matcher's is / not.
func listOperandHint(key, op string, n *yaml.Node, stringMatcher bool) string {
	vals := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		if item.Kind == yaml.ScalarNode {
			vals = append(vals, truncate(item.Value))
		}
	}
	if len(vals) > 3 {
		vals = append(vals[:2], "...")
	}
	if len(vals) == 0 {
		vals = []string{"a", "b"}
	}
	each := func() string {
		var b strings.Builder
		for i, v := range vals {
			if i > 0 {
				b.WriteString(", ")
			}
			if v == "..." {
				b.WriteString(v)
				continue
			}
			fmt.Fprintf(&b, "{%s: {%s: %s}}", key, op, v)
		}
		return b.String()
	}
	switch {
	case stringMatcher && op == opIs:
		return fmt.Sprintf("; PPL compares one value: for any of several write {%s: {%s: [%s]}}, or an or: with one criterion per value", key, opIn, strings.Join(vals, ", "))
	case stringMatcher && op == opNot:
		return fmt.Sprintf("; PPL compares one value: to exclude several write {%s: {%s: [%s]}}", key, opNotIn, strings.Join(vals, ", "))
	case op == opExclude:
		return fmt.Sprintf("; PPL compares one value: to exclude several write one criterion per value under and: %s", each())
	}
	return fmt.Sprintf("; PPL compares one value: for any of several write one criterion per value under or: %s", each())
}
