package policy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// Shorthands are the route options that Pomerium turns into an extra allow
// rule whose criteria are or-ed together.
type Shorthands struct {
	AllowPublicUnauthenticatedAccess bool             // allow_public_unauthenticated_access: accept
	AllowAnyAuthenticatedUser        bool             // allow_any_authenticated_user: authenticated_user
	CORSAllowPreflight               bool             // cors_allow_preflight: cors_preflight
	AllowedUsers                     []string         // allowed_users: user is u, or email is u
	AllowedDomains                   []string         // allowed_domains: domain is d
	AllowedIDPClaims                 map[string][]any // allowed_idp_claims: claim/<k> has v, for each v
}

// Policy returns the shorthands as a PPL policy: one allow rule with an
// `or` of their criteria, or an empty policy when none is set. The order
// is Pomerium's; claims go by sorted name.
func (sh Shorthands) Policy() *Policy {
	var or []Criterion
	flag := func(name string) { or = append(or, Criterion{Name: name}) }
	str := func(name, v string) {
		or = append(or, Criterion{Name: name, String: &StringMatcher{Ops: []StringOp{{Op: opIs, Value: v}}}})
	}
	if sh.AllowPublicUnauthenticatedAccess {
		flag("accept")
	}
	if sh.CORSAllowPreflight {
		flag("cors_preflight")
	}
	if sh.AllowAnyAuthenticatedUser {
		flag("authenticated_user")
	}
	for _, d := range sh.AllowedDomains {
		str("domain", d)
	}
	for _, k := range slices.Sorted(maps.Keys(sh.AllowedIDPClaims)) {
		for _, v := range sh.AllowedIDPClaims[k] {
			or = append(or, Criterion{Name: "claim", SubPath: k, List: &ListMatcher{Ops: []ListOp{{Op: opHas, Values: []string{claimString(v)}, Type: claimType(v)}}}})
		}
	}
	for _, u := range sh.AllowedUsers {
		str("user", u)
		str("email", u)
	}
	if len(or) == 0 {
		return &Policy{}
	}
	return &Policy{Rules: []Rule{{Allow: &Action{Or: or}}}}
}

// claimType returns the JSON type of a claim value from YAML/JSON.
func claimType(v any) JSONType {
	switch v.(type) {
	case bool:
		return JSONBool
	case int, int64, uint64, float64, float32:
		return JSONNumber
	}
	return JSONString
}

// claimString renders a claim value from YAML/JSON as ClaimValue.Text
// does.
func claimString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}
