package policy

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// dateCriterion matches the request time against absolute instants
// ({after: <date>, before: <date>}, both exclusive).
type dateCriterion struct{}

func (dateCriterion) name() string       { return "date" }
func (dateCriterion) takes() valueKind   { return dateValue{} }
func (dateCriterion) needs() subjectData { return needsRequest }
func (dateCriterion) compile(c *Criterion) check {
	m := *c.Date
	return check{
		test: func(in *Input) bool {
			t := now(in)
			return (m.After.IsZero() || t.After(m.After)) && (m.Before.IsZero() || t.Before(m.Before))
		},
		ok: ReasonDateOK, fail: ReasonDateUnauthorized,
	}
}

// dateValue is a date matcher (Criterion.Date).
type dateValue struct{}

func (dateValue) parse(c *Criterion, _ string, v *yaml.Node) (err error) {
	c.Date, err = parseDate(v)
	return err
}

func (dateValue) check(c *Criterion) error {
	if c.Date == nil {
		return astError(c, "criterion %q has no matcher", c.Name)
	}
	return nil
}

// dateLayouts are the ISO-8601 forms accepted by the date matcher. A
// value without a zone is UTC.
var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
}

func parseDateValue(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseDate(n *yaml.Node) (*DateMatcher, error) {
	const what = `criterion "date"`
	if n.Kind != yaml.MappingNode {
		return nil, errorf(n, "%s takes {%s: <date>, %s: <date>}, not %s", what, opAfter, opBefore, describe(n))
	}
	ps, err := pairs(n, what)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, errorf(n, "%s has no matcher; use %s and/or %s", what, opAfter, opBefore)
	}
	m := &DateMatcher{}
	for _, p := range ps {
		opWhat := fmt.Sprintf("matcher %q of criterion \"date\"", p.key)
		var dst *time.Time
		switch p.key {
		case opAfter:
			dst = &m.After
		case opBefore:
			dst = &m.Before
		default:
			return nil, errorf(p.keyN, "matcher %q of criterion \"date\" is unknown%s; date matchers are %s, %s",
				p.key, suggest(p.key, []string{opAfter, opBefore}), opAfter, opBefore)
		}
		s, err := scalar(p.value, opWhat)
		if err != nil {
			return nil, err
		}
		t, ok := parseDateValue(s)
		if !ok {
			return nil, errorf(p.value, "%s: %q is not an ISO-8601 date (2006-01-02T15:04:05, zone optional, UTC by default)", opWhat, s)
		}
		*dst = t
	}
	return m, nil
}
