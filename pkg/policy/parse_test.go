package policy

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"unknown criterion", "allow:\n  or:\n    - emial: a@b.c\n", `line 3: criterion "emial" is unknown; did you mean "email"? (column 7)`},
		{"unknown criterion far from any", "allow: {or: [{zzzzzzzz: x}]}", `line 1: criterion "zzzzzzzz" is unknown (column 15)`},
		{"unsupported criterion", "allow:\n  or:\n  - device: {type: any}\n", `line 3: criterion "device" is not supported by gatehouse (column 5)`},
		{"nested operator", "allow:\n  or:\n  - and: []\n", `line 3: criterion "and" is unknown; logical operators do not nest in PPL`},
		{"unknown action", "alow:\n  or: []\n", `line 1: action "alow" is unknown; did you mean "allow"?`},
		{"unknown operator", "allow:\n  xor: []\n", `line 2: operator "xor" is unknown; did you mean "or"?`},
		{"criterion where operator goes", "allow:\n  email: a@b.c\n", `line 2: operator "email" is unknown; criteria go in a list under and, or, not or nor`},
		{"unknown string matcher", "allow:\n  or:\n    - email:\n        iss: a@b.c\n", `line 4: matcher "iss" of criterion "email" is unknown; did you mean "is"?`},
		{"unknown string matcher far", "allow: {or: [{email: {matches: x}}]}", `matcher "matches" of criterion "email" is unknown; string matchers are is, not, in, not_in, contains, starts_with, ends_with`},
		{"unknown list matcher", "allow:\n  or:\n    - groups:\n        hass: admin\n", `line 4: matcher "hass" of criterion "groups" is unknown; did you mean "has"?`},
		{"string matcher on list", "allow: {or: [{groups: {starts_with: a}}]}", `matcher "starts_with" of criterion "groups" is unknown`},
		{"in needs list", "allow:\n  or:\n    - email:\n        in: a@b.c\n", `line 4: matcher "in" of criterion "email" takes a list of strings, not the value "a@b.c"`},
		{"not_in needs list", "allow: {or: [{email: {not_in: {a: b}}}]}", `matcher "not_in" of criterion "email" takes a list of strings, not an object`},
		{"in empty list", "allow: {or: [{email: {in: []}}]}", `matcher "in" of criterion "email" takes a list of strings, not an empty list`},
		{"is needs string", "allow:\n  or:\n    - email: {is: [a, b]}\n", `line 3: matcher "is" of criterion "email" takes a string, not a list`},
		{"list is needs one", "allow: {or: [{groups: {is: [a, b]}}]}", `matcher "is" of criterion "groups" takes a string, not a list`},
		// Pomerium compares a list operand as one value (never equal): refused, with what to write instead
		{"string bare list", "allow:\n  or:\n    - email: [x@y.z, bob@other.org]\n", `line 3: criterion "email" takes a string, not a list; PPL compares one value: for any of several write {email: {in: [x@y.z, bob@other.org]}}, or an or: with one criterion per value (column 14)`},
		{"string not list", "allow: {or: [{http_path: {not: [/a, /b]}}]}", `matcher "not" of criterion "http_path" takes a string, not a list; PPL compares one value: to exclude several write {http_path: {not_in: [/a, /b]}}`},
		{"string starts_with list", "allow: {or: [{http_path: {starts_with: [/a, /b]}}]}", `matcher "starts_with" of criterion "http_path" takes a string, not a list; PPL compares one value: for any of several write one criterion per value under or: {http_path: {starts_with: /a}}, {http_path: {starts_with: /b}}`},
		{"list bare list", "allow: {or: [{groups: [ops, dev]}]}", `criterion "groups" takes a string, not a list; PPL compares one value: for any of several write one criterion per value under or: {groups: {has: ops}}, {groups: {has: dev}}`},
		{"list has list", "allow: {or: [{groups: {has: [ops, dev]}}]}", `matcher "has" of criterion "groups" takes a string, not a list; PPL compares one value: for any of several write one criterion per value under or: {groups: {has: ops}}, {groups: {has: dev}}`},
		{"list exclude list", "allow: {or: [{groups: {exclude: [ops, admin]}}]}", `matcher "exclude" of criterion "groups" takes a string, not a list; PPL compares one value: to exclude several write one criterion per value under and: {groups: {exclude: ops}}, {groups: {exclude: admin}}`},
		{"claim has long list", "allow: {or: [{claim/role: {has: [a, b, c, d]}}]}", `matcher "has" of criterion "claim/role" takes a string, not a list; PPL compares one value: for any of several write one criterion per value under or: {claim/role: {has: a}}, {claim/role: {has: b}}, ...`},
		{"null matcher value", "allow: {or: [{email: {is: null}}]}", `matcher "is" of criterion "email" takes a string, not null`},
		{"null criterion value", "allow: {or: [{email: }]}", `criterion "email" takes a string, not null`},
		{"empty matcher", "allow:\n  or:\n    - email: {}\n", `line 3: criterion "email" has no matcher; use one of is, not`},
		{"empty list matcher", "allow: {or: [{groups: {}}]}", `criterion "groups" has no matcher; use one of has, is, exclude`},
		{"claim without name", "allow:\n  and:\n    - claim: Smith\n", `line 3: criterion "claim" needs a claim name: claim/<name> (column 7)`},
		{"claim empty name", "allow: {and: [{claim/: Smith}]}", `criterion "claim" needs a claim name`},
		{"subpath on email", "allow: {and: [{email/x: a}]}", `criterion "email" takes no sub-path ("email/x")`},
		{"two keys in criterion", "allow:\n  and:\n    - email: a@b.c\n      domain: b.c\n", `line 4: a criterion has exactly one key, found "email" and "domain"`},
		{"empty criterion", "allow: {and: [{}]}", `a criterion of "and" is empty`},
		{"criterion not object", "allow:\n  and:\n    - email\n", `line 3: a criterion of "and" is a one-key object like {email: {is: a@example.com}}, not the value "email"`},
		{"operator not list", "allow:\n  and:\n    email: a@b.c\n", `line 3: operator "and" holds a list of criteria, not an object`},
		{"action not object", "allow: [x]", `action "allow" holds logical operators (and, or, not, nor), not a list`},
		{"policy scalar", "hello", `a policy is a rule object or a list of rule objects, not the value "hello"`},
		{"list of scalars", "- allow: {}\n- hello\n", `line 2: a policy list holds rule objects`},
		{"duplicate operator", "allow:\n  or: []\n  or: []\n", `line 3: key "or" appears twice in action "allow"`},
		{"duplicate action", "allow: {}\nallow: {}\n", `line 2: key "allow" appears twice in a rule`},
		{"bad ip", "allow:\n  or:\n    - source_ip: 10.0.0.300\n", `line 3: criterion "source_ip": "10.0.0.300" is not an IP address or CIDR range`},
		{"bad cidr", "allow: {or: [{source_ip: [10.0.0.0/8, 10.0.0.0/33]}]}", `criterion "source_ip": "10.0.0.0/33" is not an IP address or CIDR range`},
		{"source_ip object", "allow: {or: [{source_ip: {is: 1.2.3.4}}]}", `criterion "source_ip" takes an IP address, a CIDR range or a list of them, not an object`},
		{"source_ip empty list", "allow: {or: [{source_ip: []}]}", `criterion "source_ip" takes an IP address, a CIDR range or a list of them, not an empty list`},
		{"bad date", "allow:\n  and:\n    - date:\n        after: yesterday\n", `line 4: matcher "after" of criterion "date": "yesterday" is not an ISO-8601 date`},
		{"date unknown matcher", "allow: {and: [{date: {afterr: 2020-01-01}}]}", `matcher "afterr" of criterion "date" is unknown; did you mean "after"?`},
		{"date scalar", "allow: {and: [{date: 2020-01-01}]}", `criterion "date" takes {after: <date>, before: <date>}, not the value "2020-01-01"`},
		{"date empty", "allow: {and: [{date: {}}]}", `criterion "date" has no matcher; use after and/or before`},
		{"bad day", "allow:\n  and:\n    - day_of_week: mon-fryday\n", `line 3: criterion "day_of_week": "mon-fryday" is not a day list`},
		{"day_of_week bad key", "allow: {and: [{day_of_week: {iz: mon}}]}", `matcher "iz" of criterion "day_of_week" is unknown; did you mean "is"?`},
		{"day_of_week bad zone", "allow: {and: [{day_of_week: {is: mon, timezone: Mars/Olympus}}]}", `matcher "timezone" of criterion "day_of_week": "Mars/Olympus" is not a time zone`},
		{"bad time", "allow:\n  and:\n    - time_of_day: {timezone: UTC, after: '25:00'}\n", `line 3: matcher "after" of criterion "time_of_day": "25:00" is not a time of day`},
		{"bad zone", "allow:\n  and:\n    - time_of_day:\n        timezone: Mars/Olympus\n        after: '9:00'\n", `line 4: matcher "timezone" of criterion "time_of_day": "Mars/Olympus" is not a time zone`},
		{"Local zone", "allow: {and: [{time_of_day: {timezone: Local, after: '9:00'}}]}", `"Local" is not a time zone`},
		{"time_of_day no bounds", "allow: {and: [{time_of_day: {timezone: UTC}}]}", `criterion "time_of_day" needs after and/or before`},
		{"time_of_day unknown key", "allow: {and: [{time_of_day: {timezone: UTC, befor: '9:00'}}]}", `matcher "befor" of criterion "time_of_day" is unknown; did you mean "before"?`},
		{"merge key", "allow:\n  <<: {or: []}\n", `merge keys (<<) are not supported`},
		{"non-string key", "allow: {or: [{[a]: b}]}", `keys of a criterion must be names`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tc.src))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\n does not contain %q", err, tc.want)
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Pos.Line == 0 {
				t.Errorf("error %T %v has no position", err, err)
			}
		})
	}
}

func TestParseYAMLSyntaxError(t *testing.T) {
	_, err := ParseYAML([]byte("allow: {or: [\n"))
	if err == nil || !strings.Contains(err.Error(), "line") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseEmbeddedNodeKeepsFileLines(t *testing.T) {
	src := `
routes:
  - from: https://grafana.example.com
    to: http://grafana:3000
    policy:
      - allow:
          or:
            - domain:
                is: example.com
            - emial: bob@example.com
`
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Routes []struct {
			Policy yaml.Node `yaml:"policy"`
		} `yaml:"routes"`
	}
	if err := doc.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	_, err := Parse(&cfg.Routes[0].Policy)
	want := `line 10: criterion "emial" is unknown; did you mean "email"? (column 15)`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func TestParseShapes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   string
		rules int
	}{
		{"empty input", "", 0},
		{"null", "null", 0},
		{"empty list", "[]", 0},
		{"single rule", "allow: {or: [{accept: true}]}", 1},
		{"list of rules", "- allow: {or: [{accept: true}]}\n- deny: {or: [{reject: true}]}", 2},
		{"empty rule object", "{}", 1},
		{"action key tolerated", "allow: {action: allow, or: [{accept: true}]}", 1},
		{"aliases", "- allow: {or: &c [{accept: true}]}\n- deny: {or: *c}", 2},
		{"json", `{"allow": {"and": [{"email": {"is": "a@b.c"}}]}}`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseYAML([]byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Rules) != tc.rules {
				t.Fatalf("%d rules, want %d", len(p.Rules), tc.rules)
			}
		})
	}
	if p, err := Parse(nil); err != nil || len(p.Rules) != 0 {
		t.Fatalf("Parse(nil) = %v, %v", p, err)
	}
}

func TestParseAST(t *testing.T) {
	p, err := ParseYAML([]byte(`
allow:
  and:
    - domain:
        is: example.com
    - claim/groups: admin
  nor:
    - source_ip: [10.0.0.0/8, 192.0.2.1]
deny:
  or:
    - email:
        in: [a@b.c]
        not: x
`))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Rules[0]
	if r.Allow == nil || r.Deny == nil || len(r.Allow.And) != 2 || len(r.Allow.Nor) != 1 || len(r.Deny.Or) != 1 {
		t.Fatalf("shape: %+v", r)
	}
	c := r.Allow.And[1]
	if c.Name != "claim" || c.SubPath != "groups" || c.Pos != (Pos{6, 7}) || c.List.Ops[0].Op != "has" || c.List.Ops[0].Values[0] != "admin" || c.List.Ops[0].Type != JSONString {
		t.Errorf("claim criterion: %+v", c)
	}
	if ips := r.Allow.Nor[0].IPs; len(ips) != 2 || ips[1].String() != "192.0.2.1/32" {
		t.Errorf("ips: %v", ips)
	}
	if ops := r.Deny.Or[0].String.Ops; len(ops) != 2 || ops[0].Op != "in" || ops[1].Op != "not" {
		t.Errorf("email ops: %+v", ops)
	}
}

func TestShorthandsPolicy(t *testing.T) {
	if p := (Shorthands{}).Policy(); len(p.Rules) != 0 {
		t.Errorf("empty shorthands gave %d rules", len(p.Rules))
	}
	p := Shorthands{
		AllowPublicUnauthenticatedAccess: true, CORSAllowPreflight: true, AllowAnyAuthenticatedUser: true,
		AllowedDomains: []string{"d"}, AllowedUsers: []string{"u"},
		AllowedIDPClaims: map[string][]any{"b": {"2"}, "a": {"1", 1.5}},
	}.Policy()
	var names []string
	for _, c := range p.Rules[0].Allow.Or {
		n := c.Name
		if c.SubPath != "" {
			n += "/" + c.SubPath + "=" + c.List.Ops[0].Values[0]
		}
		names = append(names, n)
	}
	want := "accept cors_preflight authenticated_user domain claim/a=1 claim/a=1.5 claim/b=2 user email"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

// FuzzParse checks that no input makes Parse or Compile panic, and that a
// policy that parses also compiles and evaluates.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"allow: {or: [{domain: {is: example.com}}]}",
		"- allow: {or: [{accept: true}]}\n- deny: {or: [{reject: true}]}",
		"allow: {and: [{claim/family_name: Smith}], not: [{http_method: GET}], nor: [{source_ip: [10.0.0.0/8]}]}",
		"allow: {and: [{date: {after: 2020-01-02T16:20:00, before: 2150-01-02T16:20:00}}, {day_of_week: tue-fri}, {time_of_day: {timezone: UTC, after: '2:20:00', before: 4:30PM}}]}",
		"allow: {or: [{email: {in: [a, b, c, d, e, f, g, h, i]}}, {groups: {has: a, exclude: b, is: c}}]}",
		"deny: {or: [{cors_preflight: true}, {pomerium_routes: true}, {authenticated_user: true}]}",
		"- allow: {or: &c [{accept: true}]}\n- deny: {or: *c}",
		"a: &a [*a]",
		"allow: {or: [{emial: x}]}",
		"[[[[]]]]",
		"{allow: {or: [{source_ip: '::ffff:1.2.3.4/128'}]}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseYAML(data)
		if err != nil {
			return
		}
		e, err := Compile(Shorthands{AllowedIDPClaims: map[string][]any{"x": {1}}}, p)
		if err != nil {
			t.Fatalf("parsed policy does not compile: %v\n%s", err, data)
		}
		for _, s := range []*Subject{nil, alice, carol} {
			e.Evaluate(req{session: s}.input())
		}
	})
}
