package policy

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a policy error with its place in the YAML source. Parse returns
// *Error for every problem it finds in a document.
type Error struct {
	Pos Pos
	Msg string // names the criterion, matcher or key at fault
}

// Error formats the error as "line 12: criterion "emial" is unknown; did
// you mean "email"? (column 7)".
func (e *Error) Error() string {
	if e.Pos.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s (column %d)", e.Pos.Line, e.Msg, e.Pos.Column)
}

func errorf(n *yaml.Node, format string, args ...any) error {
	return &Error{Pos: posOf(n), Msg: fmt.Sprintf(format, args...)}
}

func posOf(n *yaml.Node) Pos {
	if n == nil {
		return Pos{}
	}
	return Pos{Line: n.Line, Column: n.Column}
}

// ParseYAML parses a PPL document from YAML source. Empty input and a YAML
// null are an empty policy.
func ParseYAML(data []byte) (*Policy, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	return Parse(&doc)
}

// Parse parses a PPL document from a YAML node: a document node, a rule
// object or a list of rule objects. A nil node or a YAML null is an empty
// policy. Errors are *Error and give the line and column in the source the
// node was decoded from.
func Parse(node *yaml.Node) (*Policy, error) {
	n, err := resolve(node)
	if err != nil {
		return nil, err
	}
	p := &Policy{}
	if n == nil || isNull(n) {
		return p, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		r, err := parseRule(n)
		if err != nil {
			return nil, err
		}
		p.Rules = append(p.Rules, r)
	case yaml.SequenceNode:
		for _, item := range n.Content {
			item, err := resolve(item)
			if err != nil {
				return nil, err
			}
			if item.Kind != yaml.MappingNode {
				return nil, errorf(item, "a policy list holds rule objects ({allow: ...} or {deny: ...}), not %s", describe(item))
			}
			r, err := parseRule(item)
			if err != nil {
				return nil, err
			}
			p.Rules = append(p.Rules, r)
		}
	default:
		return nil, errorf(n, "a policy is a rule object or a list of rule objects, not %s", describe(n))
	}
	return p, nil
}

// resolve unwraps document and alias nodes. It returns nil for an empty
// document.
func resolve(n *yaml.Node) (*yaml.Node, error) {
	for i := 0; n != nil; i++ {
		if i > 32 {
			return nil, errorf(n, "aliases nest too deeply")
		}
		switch n.Kind {
		case 0: // what yaml.Unmarshal leaves for empty input
			return nil, nil
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil, nil
			}
			n = n.Content[0]
		case yaml.AliasNode:
			if n.Alias == nil {
				return nil, errorf(n, "alias %q is undefined", n.Value)
			}
			n = n.Alias
		default:
			return n, nil
		}
	}
	return nil, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names a node's kind for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("the value %q", truncate(n.Value))
	}
	return "an empty document"
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// pair is one key/value entry of a mapping, with the key's position.
type pair struct {
	key   string
	keyN  *yaml.Node
	value *yaml.Node
}

// pairs returns the entries of a mapping node, resolving aliases and
// refusing non-string keys, merge keys and duplicate keys.
func pairs(n *yaml.Node, what string) ([]pair, error) {
	if len(n.Content)%2 != 0 {
		return nil, errorf(n, "malformed %s", what)
	}
	out := make([]pair, 0, len(n.Content)/2)
	for i := 0; i < len(n.Content); i += 2 {
		k, err := resolve(n.Content[i])
		if err != nil {
			return nil, err
		}
		if k == nil || k.Kind != yaml.ScalarNode || isNull(k) {
			return nil, errorf(n.Content[i], "keys of %s must be names", what)
		}
		if k.Tag == "!!merge" {
			return nil, errorf(k, "merge keys (<<) are not supported in %s", what)
		}
		v, err := resolve(n.Content[i+1])
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, errorf(k, "key %q of %s has no value", k.Value, what)
		}
		for _, p := range out {
			if p.key == k.Value {
				return nil, errorf(k, "key %q appears twice in %s", k.Value, what)
			}
		}
		out = append(out, pair{key: k.Value, keyN: k, value: v})
	}
	return out, nil
}

func parseRule(n *yaml.Node) (Rule, error) {
	r := Rule{Pos: posOf(n)}
	ps, err := pairs(n, "a rule")
	if err != nil {
		return r, err
	}
	for _, p := range ps {
		var dst **Action
		switch p.key {
		case "allow":
			dst = &r.Allow
		case "deny":
			dst = &r.Deny
		default:
			return r, errorf(p.keyN, "action %q is unknown%s; a rule holds allow and/or deny", p.key, suggest(p.key, []string{"allow", "deny"}))
		}
		a, err := parseAction(p.key, p.value)
		if err != nil {
			return r, err
		}
		*dst = a
	}
	return r, nil
}

func parseAction(name string, n *yaml.Node) (*Action, error) {
	a := &Action{Pos: posOf(n)}
	if isNull(n) {
		return a, nil // "allow:" with nothing under it: no operators
	}
	if n.Kind != yaml.MappingNode {
		return nil, errorf(n, "action %q holds logical operators (and, or, not, nor), not %s", name, describe(n))
	}
	ps, err := pairs(n, fmt.Sprintf("action %q", name))
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		var dst *[]Criterion
		switch p.key {
		case logicAnd:
			dst = &a.And
		case logicOr:
			dst = &a.Or
		case logicNot:
			dst = &a.Not
		case logicNor:
			dst = &a.Nor
		case "action":
			// Pomerium's parser tolerates an "action" key in the body and
			// ignores it; so does gatehouse.
			continue
		default:
			msg := "operator %q is unknown%s; an action holds and, or, not, nor"
			if _, ok := lookupCriterion(p.key); ok || slices.Contains(unsupportedCriteria, p.key) {
				msg = "operator %q is unknown%s; criteria go in a list under and, or, not or nor"
			}
			return nil, errorf(p.keyN, msg, p.key, suggest(p.key, logicalOperators))
		}
		cs, err := parseCriteria(p.key, p.value)
		if err != nil {
			return nil, err
		}
		*dst = cs
	}
	return a, nil
}

func parseCriteria(op string, n *yaml.Node) ([]Criterion, error) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errorf(n, "operator %q holds a list of criteria, not %s", op, describe(n))
	}
	out := make([]Criterion, 0, len(n.Content))
	for _, item := range n.Content {
		item, err := resolve(item)
		if err != nil {
			return nil, err
		}
		if item.Kind != yaml.MappingNode {
			return nil, errorf(item, "a criterion of %q is a one-key object like {email: {is: a@example.com}}, not %s", op, describe(item))
		}
		ps, err := pairs(item, "a criterion")
		if err != nil {
			return nil, err
		}
		if len(ps) != 1 {
			if len(ps) == 0 {
				return nil, errorf(item, "a criterion of %q is empty; it needs exactly one key", op)
			}
			return nil, errorf(ps[1].keyN, "a criterion has exactly one key, found %q and %q; give each its own list item", ps[0].key, ps[1].key)
		}
		c, err := parseCriterion(ps[0])
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseCriterion(p pair) (Criterion, error) {
	name, sub, hasSub := strings.Cut(p.key, "/")
	c := Criterion{Name: name, SubPath: sub, Pos: posOf(p.keyN)}
	cr, ok := lookupCriterion(name)
	if !ok {
		if slices.Contains(unsupportedCriteria, name) {
			return c, errorf(p.keyN, "criterion %q is not supported by gatehouse", name)
		}
		if slices.Contains(logicalOperators, name) {
			return c, errorf(p.keyN, "criterion %q is unknown; logical operators do not nest in PPL, use separate rules", name)
		}
		return c, errorf(p.keyN, "criterion %q is unknown%s", name, suggest(name, criterionNames))
	}
	sp, takesSub := cr.(subPathCriterion)
	switch {
	case takesSub && (!hasSub || sub == ""):
		return c, errorf(p.keyN, "criterion %q needs %s: %s/<name>", name, sp.subPath(), name)
	case !takesSub && hasSub:
		return c, errorf(p.keyN, "criterion %q takes no sub-path (%q)", name, p.key)
	}
	return c, cr.takes().parse(&c, p.key, p.value)
}

// scalar returns the text of a scalar value; null, lists and objects are
// errors naming the criterion (and matcher, if any).
func scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", errorf(n, "%s takes a string, not %s", what, describe(n))
	}
	return n.Value, nil
}

// scalars returns the texts of a list of scalars.
func scalars(n *yaml.Node, what string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, errorf(n, "%s takes a list of strings, not %s", what, describe(n))
	}
	if len(n.Content) == 0 {
		return nil, errorf(n, "%s takes a list of strings, not an empty list", what)
	}
	out, _, err := texts(n.Content, what)
	return out, err
}

// texts returns the text of each scalar of items (aliases resolved) and the
// resolved nodes, for errors that point at one item.
func texts(items []*yaml.Node, what string) ([]string, []*yaml.Node, error) {
	out := make([]string, 0, len(items))
	nodes := make([]*yaml.Node, 0, len(items))
	for _, item := range items {
		item, err := resolve(item)
		if err != nil {
			return nil, nil, err
		}
		s, err := scalar(item, what)
		if err != nil {
			return nil, nil, err
		}
		out, nodes = append(out, s), append(nodes, item)
	}
	return out, nodes, nil
}

// scalarOrList accepts a string or a list of strings.
func scalarOrList(n *yaml.Node, what string) ([]string, error) {
	if n.Kind == yaml.SequenceNode {
		return scalars(n, what)
	}
	s, err := scalar(n, what)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

// suggest returns `; did you mean "x"?` for the closest of names within
// edit distance 2 of s, or "".
func suggest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(s), n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	// optimal string alignment distance: a transposition ("emial" for
	// "email") counts as one edit
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
