package policy

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
	operandString       operand = iota // one string
	operandList                        // a non-empty list of strings
	operandStringOrList                // a string or a non-empty list of strings
)

// operatorNames returns the names of ops, in order.
func operatorNames[T any](ops []T, name func(T) string) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = name(o)
	}
	return out
}
