package policy

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// dayOfWeekCriterion matches the weekday of the request time.
type dayOfWeekCriterion struct{}

func (dayOfWeekCriterion) name() string       { return "day_of_week" }
func (dayOfWeekCriterion) takes() valueKind   { return dayOfWeekValue{} }
func (dayOfWeekCriterion) needs() subjectData { return needsRequest }
func (dayOfWeekCriterion) compile(c *Criterion) check {
	m := *c.DayOfWeek
	return check{
		test: func(in *Input) bool { return m.Days[now(in).In(m.Location).Weekday()] },
		ok:   ReasonDayOfWeekOK, fail: ReasonDayOfWeekUnauthorized,
	}
}

// dayOfWeekValue is a day of week matcher (Criterion.DayOfWeek).
type dayOfWeekValue struct{}

func (dayOfWeekValue) parse(c *Criterion, _ string, v *yaml.Node) (err error) {
	c.DayOfWeek, err = parseDayOfWeekMatcher(v)
	return err
}

func (dayOfWeekValue) check(c *Criterion) error {
	if c.DayOfWeek == nil {
		return astError(c, "criterion %q has no matcher", c.Name)
	}
	return nil
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tues": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thur": time.Thursday, "thurs": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

// parseDays parses "*", "mon,wed,fri", "mon-fri", "fri-mon" (wraps past
// Sunday) or a comma list mixing days and ranges into days.
func parseDays(s string, days *[7]bool) bool {
	s = strings.TrimSpace(s)
	if s == "*" {
		for i := range days {
			days[i] = true
		}
		return true
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		if part == "*" {
			for i := range days {
				days[i] = true
			}
			continue
		}
		from, to, isRange := strings.Cut(part, "-")
		d1, ok := dayNames[strings.TrimSpace(from)]
		if !ok {
			return false
		}
		if !isRange {
			days[d1] = true
			continue
		}
		d2, ok := dayNames[strings.TrimSpace(to)]
		if !ok {
			return false
		}
		for d := d1; ; d = (d + 1) % 7 {
			days[d] = true
			if d == d2 {
				break
			}
		}
	}
	return true
}

// parseDayOfWeekMatcher accepts Pomerium's string form ("mon-fri"), a list
// of such strings, and, as a gatehouse extension for zones other than
// UTC, {is: "mon-fri", timezone: "Europe/Berlin"}.
func parseDayOfWeekMatcher(n *yaml.Node) (*DayOfWeekMatcher, error) {
	const what = `criterion "day_of_week"`
	m := &DayOfWeekMatcher{Location: time.UTC}
	valueNode := n
	if n.Kind == yaml.MappingNode {
		ps, err := pairs(n, what)
		if err != nil {
			return nil, err
		}
		valueNode = nil
		for _, p := range ps {
			switch p.key {
			case opIs:
				valueNode = p.value
			case opTimezone:
				loc, err := parseZone(p.value, fmt.Sprintf("matcher %q of criterion \"day_of_week\"", p.key))
				if err != nil {
					return nil, err
				}
				m.Location = loc
			default:
				return nil, errorf(p.keyN, "matcher %q of criterion \"day_of_week\" is unknown%s; use a day list like mon-fri, or {%s: mon-fri, %s: <zone>}",
					p.key, suggest(p.key, []string{opIs, opTimezone}), opIs, opTimezone)
			}
		}
		if valueNode == nil {
			return nil, errorf(n, "%s needs days: %s: mon-fri", what, opIs)
		}
	}
	vs, err := scalarOrList(valueNode, what)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		if !parseDays(v, &m.Days) {
			return nil, errorf(valueNode, "%s: %q is not a day list; use *, mon,wed,fri or mon-fri (English names or 3-letter abbreviations)", what, v)
		}
	}
	return m, nil
}
