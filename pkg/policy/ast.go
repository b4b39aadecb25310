package policy

import (
	"fmt"
	"net/netip"
	"time"
)

// Policy is a parsed PPL document: the rules it holds, in document order.
// A Policy is plain data; it is safe to share once built.
type Policy struct {
	Rules []Rule
}

// Warnings lists what the policy says that does not do what it reads as:
// `accept: false` accepts and `reject: false` rejects, in Pomerium and
// here, since those criteria take no value.
func (p *Policy) Warnings() []*Error {
	var out []*Error
	for _, r := range p.Rules {
		for _, a := range []*Action{r.Allow, r.Deny} {
			if a == nil {
				continue
			}
			for _, list := range [][]Criterion{a.And, a.Or, a.Not, a.Nor} {
				for _, c := range list {
					if c.IgnoredValue != "" {
						out = append(out, &Error{Pos: c.Pos, Msg: fmt.Sprintf("%s: %s has the effect of %s: true; %s takes no value, "+
							"as in Pomerium (to turn it off, remove the criterion)", c.Name, c.IgnoredValue, c.Name, c.Name)})
					}
				}
			}
		}
	}
	return out
}

// Rule is one rule object of a PPL document. Allow and Deny are nil when
// the rule does not have that action.
type Rule struct {
	Allow *Action
	Deny  *Action
	Pos   Pos // position of the rule object
}

// Action is the body of an `allow` or `deny` action: its logical operators.
// An empty operator list contributes nothing, as in Pomerium.
type Action struct {
	And []Criterion // all true
	Or  []Criterion // any true
	Not []Criterion // none true: ¬A ∧ ¬B
	Nor []Criterion // not all true: ¬A ∨ ¬B
	Pos Pos
}

// Pos is a position in the YAML source, 1-based; zero when the AST was
// built in Go rather than parsed (route shorthands).
type Pos struct {
	Line, Column int
}

// Criterion is one criterion of an operator list: `name` or
// `name/subpath` and its parsed matcher. Exactly the field that fits the
// criterion's kind is set (String for email, List for groups, ...);
// accept, reject, authenticated_user, cors_preflight and pomerium_routes
// carry no matcher.
type Criterion struct {
	Name    string // "email", "claim", ...
	SubPath string // the claim name of claim/<name>; "" otherwise
	Pos     Pos

	String    *StringMatcher    // domain, email, user, http_method, http_path
	List      *ListMatcher      // groups, claim/<name>
	IPs       []netip.Prefix    // source_ip: any of these ranges
	Date      *DateMatcher      // date
	DayOfWeek *DayOfWeekMatcher // day_of_week
	TimeOfDay *TimeOfDayMatcher // time_of_day
	Cert      *CertMatcher      // client_certificate

	// IgnoredValue is the value of a criterion without a matcher (accept,
	// reject, ...) when it is not true: ignored, as Pomerium ignores it,
	// and reported by Warnings.
	IgnoredValue string
}

// StringMatcher holds string matcher operators; all of them must hold.
// A bare string in the document is {is: value}. Only in and not_in take a
// list; parsing refuses a list anywhere else, since Pomerium would compare
// it as one value and never match.
type StringMatcher struct {
	Ops []StringOp
}

// StringOp is one string matcher operator.
type StringOp struct {
	Op     string   // is, not, in, not_in, contains, starts_with, ends_with
	Value  string   // operand of every operator but in and not_in
	Values []string // operand of in and not_in
}

// ListMatcher holds list matcher operators for a list of strings (groups,
// claim values); all of them must hold. A bare string is {has: value}.
// Every operator compares one value: parsing refuses a list operand, which
// Pomerium would compare whole (has never true, exclude always true).
type ListMatcher struct {
	Ops []ListOp
}

// ListOp is one list matcher operator.
//
//	has      the list contains Values[0]
//	is       the list is exactly [Values[0]]
//	exclude  the list does not contain Values[0]
//
// claim/<name> compares Values[0] with Type: a YAML true is the JSON
// boolean, 30 the number, "true" (quoted) the string. groups compares the
// text only.
type ListOp struct {
	Op     string
	Values []string // exactly one value, as text (see ClaimValue.Text)
	Type   JSONType // the value's JSON type; JSONString when unset
}

// DateMatcher matches the request time against absolute instants. A zero
// field is unset. Both bounds are exclusive: the request must be strictly
// after After and strictly before Before.
type DateMatcher struct {
	After, Before time.Time
}

// DayOfWeekMatcher matches the weekday of the request time in Location.
type DayOfWeekMatcher struct {
	Days     [7]bool // indexed by time.Weekday
	Location *time.Location
}

// TimeOfDayMatcher matches the wall-clock time of the request in Location,
// as a duration since midnight. After is inclusive and Before exclusive;
// when After is later than Before the window wraps past midnight
// (after 22:00, before 06:00).
type TimeOfDayMatcher struct {
	Location            *time.Location
	After, Before       time.Duration
	HasAfter, HasBefore bool
}

// CertMatcher is the certificate matcher of client_certificate: every
// condition set must hold. Fingerprints are SHA-256 of the certificate,
// lower-case hex (the colon-separated upper-case form is accepted and
// converted); SPKI hashes are base64 SHA-256 of the public key info; the
// SAN conditions are string matchers that must hold for at least one SAN
// of their type.
type CertMatcher struct {
	Fingerprints []string
	SPKIHashes   []string
	SANDNS       *StringMatcher
	SANEmail     *StringMatcher
	SANURI       *StringMatcher
}
