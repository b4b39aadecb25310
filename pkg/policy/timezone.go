package policy

import (
	"strings"
	"time"
	_ "time/tzdata" // time_of_day and day_of_week name zones; do not depend on the host having tzdata

	"gopkg.in/yaml.v3"
)

// parseZone parses the timezone of day_of_week and time_of_day.
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
