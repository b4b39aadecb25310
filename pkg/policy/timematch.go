package policy

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time_of_day and day_of_week name zones; do not depend on the host having tzdata

	"gopkg.in/yaml.v3"
)

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
		return nil, errorf(n, "%s takes {after: <date>, before: <date>}, not %s", what, describe(n))
	}
	ps, err := pairs(n, what)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, errorf(n, "%s has no matcher; use after and/or before", what)
	}
	m := &DateMatcher{}
	for _, p := range ps {
		opWhat := fmt.Sprintf("matcher %q of criterion \"date\"", p.key)
		var dst *time.Time
		switch p.key {
		case "after":
			dst = &m.After
		case "before":
			dst = &m.Before
		default:
			return nil, errorf(p.keyN, "matcher %q of criterion \"date\" is unknown%s; date matchers are after, before",
				p.key, suggest(p.key, []string{"after", "before"}))
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
			case "is":
				valueNode = p.value
			case "timezone":
				loc, err := parseZone(p.value, `matcher "timezone" of criterion "day_of_week"`)
				if err != nil {
					return nil, err
				}
				m.Location = loc
			default:
				return nil, errorf(p.keyN, "matcher %q of criterion \"day_of_week\" is unknown%s; use a day list like mon-fri, or {is: mon-fri, timezone: <zone>}",
					p.key, suggest(p.key, []string{"is", "timezone"}))
			}
		}
		if valueNode == nil {
			return nil, errorf(n, "%s needs days: is: mon-fri", what)
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

func parseZone(n *yaml.Node, what string) (*time.Location, error) {
	s, err := scalar(n, what)
	if err != nil {
		return nil, err
	}
	if s == "" || strings.EqualFold(s, "local") {
		// time.LoadLocation("") is UTC and "Local" is the host's zone;
		// neither is what a policy author means, so name a real zone.
		return nil, errorf(n, "%s: %q is not a time zone; use a name like UTC or America/Phoenix", what, s)
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, errorf(n, "%s: %q is not a time zone; use a name like UTC or America/Phoenix", what, s)
	}
	return loc, nil
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
		return nil, errorf(n, "%s takes {timezone: <zone>, after: <time>, before: <time>}, not %s", what, describe(n))
	}
	ps, err := pairs(n, what)
	if err != nil {
		return nil, err
	}
	m := &TimeOfDayMatcher{Location: time.UTC}
	for _, p := range ps {
		opWhat := fmt.Sprintf("matcher %q of criterion \"time_of_day\"", p.key)
		switch p.key {
		case "timezone":
			loc, err := parseZone(p.value, opWhat)
			if err != nil {
				return nil, err
			}
			m.Location = loc
		case "after", "before":
			s, err := scalar(p.value, opWhat)
			if err != nil {
				return nil, err
			}
			d, ok := parseClock(s)
			if !ok {
				return nil, errorf(p.value, "%s: %q is not a time of day; use 15:04, 15:04:05, 3:04PM or 3PM", opWhat, s)
			}
			if p.key == "after" {
				m.After, m.HasAfter = d, true
			} else {
				m.Before, m.HasBefore = d, true
			}
		default:
			return nil, errorf(p.keyN, "matcher %q of criterion \"time_of_day\" is unknown%s; time of day matchers are timezone, after, before",
				p.key, suggest(p.key, []string{"timezone", "after", "before"}))
		}
	}
	if !m.HasAfter && !m.HasBefore {
		return nil, errorf(n, "%s needs after and/or before", what)
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
