package policy

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// timeOfDayCriterion matches the wall-clock time of the request in a zone
// ({timezone, after, before}).
type timeOfDayCriterion struct{}

func (timeOfDayCriterion) name() string       { return "time_of_day" }
func (timeOfDayCriterion) takes() valueKind   { return timeOfDayValue{} }
func (timeOfDayCriterion) needs() subjectData { return needsRequest }
func (timeOfDayCriterion) compile(c *Criterion) check {
	m := *c.TimeOfDay
	return check{
		test: func(in *Input) bool { return m.match(now(in)) },
		ok:   ReasonTimeOfDayOK, fail: ReasonTimeOfDayUnauthorized,
	}
}

// timeOfDayValue is a time of day matcher (Criterion.TimeOfDay).
type timeOfDayValue struct{}

func (timeOfDayValue) parse(c *Criterion, _ string, v *yaml.Node) (err error) {
	c.TimeOfDay, err = parseTimeOfDay(v)
	return err
}

func (timeOfDayValue) check(c *Criterion) error {
	if c.TimeOfDay == nil {
		return astError(c, "criterion %q has no matcher", c.Name)
	}
	return nil
}

// timeOfDayLayouts are the forms Pomerium documents for time_of_day.
var timeOfDayLayouts = []string{
	"3:04 PM", "3:04PM", "3 PM", "3PM",
	"15:04:05.999999999", "15:04:05", "15:04",
}

func parseClock(s string) (time.Duration, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	for _, l := range timeOfDayLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute +
				time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond()), true
		}
	}
	return 0, false
}

// parseTimeOfDay parses {timezone, after, before}. Pomerium documents
// timezone as required; gatehouse treats a missing timezone as UTC.
func parseTimeOfDay(n *yaml.Node) (*TimeOfDayMatcher, error) {
	const what = `criterion "time_of_day"`
	if n.Kind != yaml.MappingNode {
		return nil, errorf(n, "%s takes {%s: <zone>, %s: <time>, %s: <time>}, not %s", what, opTimezone, opAfter, opBefore, describe(n))
	}
	ps, err := pairs(n, what)
	if err != nil {
		return nil, err
	}
	m := &TimeOfDayMatcher{Location: time.UTC}
	for _, p := range ps {
		opWhat := fmt.Sprintf("matcher %q of criterion \"time_of_day\"", p.key)
		switch p.key {
		case opTimezone:
			loc, err := parseZone(p.value, opWhat)
			if err != nil {
				return nil, err
			}
			m.Location = loc
		case opAfter, opBefore:
			s, err := scalar(p.value, opWhat)
			if err != nil {
				return nil, err
			}
			d, ok := parseClock(s)
			if !ok {
				return nil, errorf(p.value, "%s: %q is not a time of day; use 15:04, 15:04:05, 3:04PM or 3PM", opWhat, s)
			}
			if p.key == opAfter {
				m.After, m.HasAfter = d, true
			} else {
				m.Before, m.HasBefore = d, true
			}
		default:
			return nil, errorf(p.keyN, "matcher %q of criterion \"time_of_day\" is unknown%s; time of day matchers are %s, %s, %s",
				p.key, suggest(p.key, []string{opTimezone, opAfter, opBefore}), opTimezone, opAfter, opBefore)
		}
	}
	if !m.HasAfter && !m.HasBefore {
		return nil, errorf(n, "%s needs %s and/or %s", what, opAfter, opBefore)
	}
	return m, nil
}

// sinceMidnight returns the wall-clock time of t in loc as a duration
// since midnight.
func sinceMidnight(t time.Time, loc *time.Location) time.Duration {
	h, m, s := t.In(loc).Clock()
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(s)*time.Second + time.Duration(t.Nanosecond())
}

func (m *TimeOfDayMatcher) match(t time.Time) bool {
	d := sinceMidnight(t, m.Location)
	switch {
	case m.HasAfter && m.HasBefore:
		if m.After <= m.Before {
			return d >= m.After && d < m.Before
		}
		return d >= m.After || d < m.Before // wraps past midnight
	case m.HasAfter:
		return d >= m.After
	default:
		return d < m.Before
	}
}
