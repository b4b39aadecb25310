package policy

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// criterion is one PPL criterion. Each lives in its own file,
// criterion_<name>.go, and is listed once in criteria (criteria.go); parse
// and compile find it there and nowhere else.
type criterion interface {
	// name is the criterion's key in a policy: "email", or "claim" for
	// claim/<name> (see subPathCriterion).
	name() string
	// takes is the value the criterion takes in a policy: it parses that
	// value into the one field of Criterion that holds it, and checks
	// that field in criteria built in Go.
	takes() valueKind
	// needs says which data of the request the criterion reads.
	needs() subjectData
	// compile returns the criterion's test and reasons. c has passed
	// takes().check. compile runs once, at load time: whatever can be
	// prepared (lower-casing, parsing, hashing) is prepared here so that
	// the test does not allocate.
	compile(c *Criterion) check
}

// stringCriterion is a criterion that matches one string of the request
// or the user with a string matcher (email, user, domain, http_method,
// http_path): they differ only in what they read and their reasons.
type stringCriterion struct {
	key  string
	data subjectData
	// read returns the string to match; false when the request has none
	// (an email without a domain), which matches nothing.
	read     func(in *Input) (string, bool)
	ok, fail Reasons
}

func (s stringCriterion) name() string       { return s.key }
func (stringCriterion) takes() valueKind     { return stringValue{} }
func (s stringCriterion) needs() subjectData { return s.data }
func (s stringCriterion) compile(c *Criterion) check {
	m, read := compileStringMatcher(c.String), s.read
	return check{
		test: func(in *Input) bool {
			v, ok := read(in)
			return ok && m(v)
		},
		ok: s.ok, fail: s.fail,
	}
}

// flagCriterion is a criterion that takes no matcher (accept: true,
// cors_preflight: true): a fixed test of the request.
type flagCriterion struct {
	key      string
	data     subjectData
	test     func(in *Input) bool
	ok, fail Reasons
}

func (f flagCriterion) name() string       { return f.key }
func (flagCriterion) takes() valueKind     { return flagValue{} }
func (f flagCriterion) needs() subjectData { return f.data }
func (f flagCriterion) compile(*Criterion) check {
	return check{test: f.test, ok: f.ok, fail: f.fail}
}

// subPathCriterion is a criterion written name/<sub-path>, such as
// claim/<name>; the sub-path is required. Criteria that do not implement it
// take no sub-path.
type subPathCriterion interface {
	criterion
	// subPath names what the sub-path is, for messages ("a claim name").
	subPath() string
}

// subjectData says which data of the request a criterion reads.
type subjectData int

const (
	// needsRequest: the request alone (method, path, source, time). The
	// criterion works without a session.
	needsRequest subjectData = iota
	// needsUser: the signed-in user (Input.Session). Without a session the
	// criterion is false with user-unauthenticated and its test is not
	// called, so the test may read in.Session without a nil check.
	needsUser
)

// check is a compiled criterion: test decides, ok and fail are the
// reasons reported when it holds and when it does not.
type check struct {
	test     func(in *Input) bool
	ok, fail Reasons
	// eval, when set, replaces test, ok and fail: for a criterion whose
	// reasons depend on why it holds (invalid_client_certificate).
	eval func(in *Input) (bool, Reasons)
}

// valueKind is what a criterion takes in a policy (a flag, a string
// matcher, a list matcher, IP ranges, a date matcher, ...).
type valueKind interface {
	// parse parses v, the value of the criterion key (key is "name" or
	// "name/sub-path", for messages), into the field of c it owns.
	parse(c *Criterion, key string, v *yaml.Node) error
	// check verifies that field in a Criterion built in Go rather than
	// parsed (route shorthands, callers of Compile); nil when it is fine.
	check(c *Criterion) error
}

// lookupCriterion returns the registered criterion named name.
func lookupCriterion(name string) (criterion, bool) {
	cr, ok := criteriaByName[name]
	return cr, ok
}

// criteriaByName indexes criteria; criterionNames are their names, sorted.
var (
	criteriaByName = indexCriteria(criteria)
	criterionNames = sortedNames(criteria)
)

func indexCriteria(cs []criterion) map[string]criterion {
	m := make(map[string]criterion, len(cs))
	for _, c := range cs {
		if _, dup := m[c.name()]; dup {
			panic("policy: criterion " + c.name() + " is registered twice")
		}
		m[c.name()] = c
	}
	return m
}

func sortedNames(cs []criterion) []string {
	names := make([]string, 0, len(cs))
	for _, c := range cs {
		names = append(names, c.name())
	}
	slices.Sort(names)
	return names
}

// astError is an error in a Criterion built in Go, at the criterion's
// position (zero for shorthands).
func astError(c *Criterion, format string, args ...any) error {
	return &Error{Pos: c.Pos, Msg: fmt.Sprintf(format, args...)}
}

// compileCriterion turns a criterion into a closure. Criteria built in Go
// rather than parsed are checked here as well.
func compileCriterion(c *Criterion) (evalFunc, error) {
	cr, found := lookupCriterion(c.Name)
	if !found {
		return nil, astError(c, "criterion %q is unknown", c.Name)
	}
	if _, sub := cr.(subPathCriterion); sub != (c.SubPath != "") {
		return nil, astError(c, "criterion %q has a wrong sub-path %q", c.Name, c.SubPath)
	}
	if err := cr.takes().check(c); err != nil {
		return nil, err
	}
	ch := cr.compile(c)
	test, ok, fail := ch.test, ch.ok, ch.fail
	if ch.eval != nil {
		if cr.needs() == needsUser {
			panic("policy: criterion " + c.Name + " has eval and needs a user")
		}
		return ch.eval, nil
	}
	if cr.needs() == needsUser {
		return func(in *Input) (bool, Reasons) {
			if in.Session == nil {
				return false, ReasonUserUnauthenticated
			}
			if test(in) {
				return true, ok
			}
			return false, fail
		}, nil
	}
	return func(in *Input) (bool, Reasons) {
		if test(in) {
			return true, ok
		}
		return false, fail
	}, nil
}

// flagValue is the value kind of criteria that take no matcher (accept:
// true). Like Pomerium, they ignore the value: "accept: false" accepts.
type flagValue struct{}

func (flagValue) parse(c *Criterion, _ string, n *yaml.Node) error {
	// Pomerium reads any value as "on"; gatehouse does too, but says so
	// when the value reads as "off", since `reject: false` that rejects
	// everyone is the opposite of what its author meant.
	if n != nil && n.Kind == yaml.ScalarNode && n.Value != "" && !strings.EqualFold(n.Value, "true") {
		c.IgnoredValue = n.Value
	}
	return nil
}

func (flagValue) check(*Criterion) error { return nil }
