package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// criterionSamples holds a valid value for every registered criterion.
// TestCriteriaRegistry fails when a criterion is registered without one
// here, so a new criterion is parsed, compiled and evaluated at least once.
var criterionSamples = map[string]string{
	"accept":                     "true",
	"reject":                     "true",
	"authenticated_user":         "true",
	"cors_preflight":             "true",
	"pomerium_routes":            "true",
	"domain":                     "{is: example.com}",
	"email":                      "{is: a@example.com}",
	"user":                       "{is: u}",
	"groups":                     "{has: admin}",
	"claim/x":                    "{has: y}",
	"http_method":                "{is: GET}",
	"http_path":                  "{starts_with: /}",
	"source_ip":                  "10.0.0.0/8",
	"date":                       "{after: 2020-01-01}",
	"day_of_week":                "mon-fri",
	"time_of_day":                "{timezone: UTC, after: '9:00'}",
	"client_certificate":         "{spki_hash: " + strings.Repeat("A", 43) + "=}",
	"invalid_client_certificate": "true",
}

// requestOnly are the criteria that work without a session (ARCHITECTURE
// "Policy"); every other one needs a user.
var requestOnly = []string{"accept", "reject", "cors_preflight", "pomerium_routes", "http_method", "http_path", "source_ip", "date", "day_of_week", "time_of_day", "client_certificate", "invalid_client_certificate"}

func TestCriteriaRegistry(t *testing.T) {
	var keys []string
	for _, cr := range criteria {
		key := cr.name()
		if _, ok := cr.(subPathCriterion); ok {
			key += "/x"
		}
		keys = append(keys, key)
		src, ok := criterionSamples[key]
		if !ok {
			t.Errorf("criterion %q is registered but has no sample in criterionSamples", key)
			continue
		}
		p, err := ParseYAML([]byte("allow: {or: [{" + key + ": " + src + "}]}"))
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		e, err := Compile(Shorthands{}, p)
		if err != nil {
			t.Errorf("%s: Compile: %v", key, err)
			continue
		}
		d := e.Evaluate(req{}.input())
		if user := !slices.Contains(requestOnly, cr.name()); user != (cr.needs() == needsUser) || user != d.NeedsSignIn {
			t.Errorf("%s: needs user %v, needs() %v, anonymous NeedsSignIn %v", key, user, cr.needs(), d.NeedsSignIn)
		}
	}
	if extra := slices.DeleteFunc(slices.Sorted(maps.Keys(criterionSamples)), func(k string) bool { return slices.Contains(keys, k) }); len(extra) > 0 {
		t.Errorf("samples for unregistered criteria: %v", extra)
	}
	if len(criteriaByName) != len(criteria) || len(criterionNames) != len(criteria) {
		t.Errorf("index has %d names, list %d", len(criteriaByName), len(criteria))
	}
	for _, name := range unsupportedCriteria {
		if _, ok := lookupCriterion(name); ok {
			t.Errorf("%q is both registered and unsupported", name)
		}
	}
}

func TestOperatorTables(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{stringOperatorNames, "[is not in not_in contains starts_with ends_with]"},
		{listOperatorNames, "[has is exclude]"},
		{logicalOperators, "[and or not nor]"},
	} {
		if got := fmt.Sprint(tc.names); got != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
	}
}
