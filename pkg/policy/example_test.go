package policy_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/gatehouse/gatehouse/pkg/policy"
)

func Example() {
	p, err := policy.ParseYAML([]byte(`
allow:
  and:
    - domain:
        is: example.com
deny:
  or:
    - email:
        is: user2@example.com
`))
	if err != nil {
		panic(err)
	}
	e, err := policy.Compile(policy.Shorthands{}, p)
	if err != nil {
		panic(err)
	}
	for _, s := range []*policy.Subject{
		{UserID: "1", Email: "user1@example.com"},
		{UserID: "2", Email: "user2@example.com"},
		nil,
	} {
		d := e.Evaluate(&policy.Input{
			Method: "GET", Path: "/", SourceIP: netip.MustParseAddr("192.0.2.1"),
			Session: s, Now: time.Now(),
		})
		fmt.Println(d.Allow, d.NeedsSignIn, d.Reasons)
	}
	// Output:
	// true false domain-ok
	// false false email-ok
	// false true user-unauthenticated
}

func ExampleParseYAML_error() {
	_, err := policy.ParseYAML([]byte(`
allow:
  or:
    - emial: user@example.com
`))
	fmt.Println(err)
	// Output: line 4: criterion "emial" is unknown; did you mean "email"? (column 7)
}

func ExampleCompile_shorthands() {
	e, _ := policy.Compile(policy.Shorthands{AllowedDomains: []string{"example.com"}})
	d := e.Evaluate(&policy.Input{Session: &policy.Subject{UserID: "1", Email: "a@example.com"}})
	fmt.Println(d.Allow, d.Reasons)
	// Output: true domain-ok
}
