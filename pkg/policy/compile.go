package policy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
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
		or = append(or, Criterion{Name: name, String: &StringMatcher{Ops: []StringOp{{Op: "is", Value: v}}}})
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
			or = append(or, Criterion{Name: "claim", SubPath: k, List: &ListMatcher{Ops: []ListOp{{Op: "has", Values: []string{claimString(v)}}}}})
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

// claimString renders a claim value from YAML/JSON as the string the
// flattened session claims hold.
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

// Evaluator is a compiled route policy. It is immutable and safe for
// concurrent use.
type Evaluator struct {
	allow, deny evalFunc // nil when the route has no term for that action
}

// evalFunc is a compiled criterion, operator or action.
type evalFunc func(in *Input) (bool, Reasons)

// Compile builds the evaluator for a route from its shorthand options and
// its policies (a route may have both `policy` and the older `policies`).
// Nil policies are skipped. All allow terms of all of them are or-ed, and
// so are all deny terms. A route with no allow term denies everything.
func Compile(sh Shorthands, policies ...*Policy) (*Evaluator, error) {
	var allow, deny []evalFunc
	all := append([]*Policy{sh.Policy()}, policies...)
	for _, p := range all {
		if p == nil {
			continue
		}
		for _, r := range p.Rules {
			for _, pair := range []struct {
				a   *Action
				dst *[]evalFunc
			}{{r.Allow, &allow}, {r.Deny, &deny}} {
				if pair.a == nil {
					continue
				}
				terms, err := compileAction(pair.a)
				if err != nil {
					return nil, err
				}
				*pair.dst = append(*pair.dst, terms...)
			}
		}
	}
	return &Evaluator{allow: mergeOr(allow), deny: mergeOr(deny)}, nil
}

// compileAction returns one term per non-empty operator.
func compileAction(a *Action) ([]evalFunc, error) {
	var terms []evalFunc
	for _, op := range []struct {
		cs          []Criterion
		all, negate bool
	}{
		{a.And, true, false},
		{a.Or, false, false},
		{a.Not, true, true},
		{a.Nor, false, true},
	} {
		if len(op.cs) == 0 {
			continue
		}
		fs := make([]evalFunc, 0, len(op.cs))
		for i := range op.cs {
			f, err := compileCriterion(&op.cs[i])
			if err != nil {
				return nil, err
			}
			fs = append(fs, f)
		}
		terms = append(terms, merge(fs, op.all, op.negate))
	}
	return terms, nil
}

func mergeOr(fs []evalFunc) evalFunc {
	if len(fs) == 0 {
		return nil
	}
	return merge(fs, false, false)
}

// merge combines results as Pomerium's merge_with_and / merge_with_or do,
// after inverting each result when negate is set (not, nor). The merged
// result keeps the reasons of the members whose value equals its own.
// Every member is evaluated: the reasons of a false `and` come from all of
// its false members.
func merge(fs []evalFunc, all, negate bool) evalFunc {
	if len(fs) == 1 && !negate {
		return fs[0]
	}
	return func(in *Input) (bool, Reasons) {
		var trueR, falseR Reasons
		nTrue := 0
		for _, f := range fs {
			v, r := f(in)
			if v != negate {
				nTrue++
				trueR |= r
			} else {
				falseR |= r
			}
		}
		if (all && nTrue == len(fs)) || (!all && nTrue > 0) {
			return true, trueR
		}
		return false, falseR
	}
}

// compileCriterion turns a criterion into a closure. Criteria built in Go
// rather than parsed are checked here as well.
func compileCriterion(c *Criterion) (evalFunc, error) {
	bad := func(format string, args ...any) error {
		return &Error{Pos: c.Pos, Msg: fmt.Sprintf(format, args...)}
	}
	spec, ok := knownCriteria[c.Name]
	if !ok {
		return nil, bad("criterion %q is unknown", c.Name)
	}
	if spec.subPath != (c.SubPath != "") {
		return nil, bad("criterion %q has a wrong sub-path %q", c.Name, c.SubPath)
	}
	need := func(ok bool) error {
		if !ok {
			return bad("criterion %q has no matcher", c.Name)
		}
		return nil
	}
	switch spec.kind {
	case kindString:
		if err := need(c.String != nil && len(c.String.Ops) > 0); err != nil {
			return nil, err
		}
		for _, op := range c.String.Ops {
			switch op.Op {
			case "is", "not", "contains", "starts_with", "ends_with":
			case "in", "not_in":
				if len(op.Values) == 0 {
					return nil, bad("matcher %q of criterion %q has no values", op.Op, c.Name)
				}
			default:
				return nil, bad("matcher %q of criterion %q is unknown", op.Op, c.Name)
			}
		}
	case kindList:
		if err := need(c.List != nil && len(c.List.Ops) > 0); err != nil {
			return nil, err
		}
		for _, op := range c.List.Ops {
			switch {
			case op.Op != "has" && op.Op != "is" && op.Op != "exclude":
				return nil, bad("matcher %q of criterion %q is unknown", op.Op, c.Name)
			case len(op.Values) == 0 || (op.Op == "is" && len(op.Values) != 1):
				return nil, bad("matcher %q of criterion %q has %d values", op.Op, c.Name, len(op.Values))
			}
		}
	case kindIP:
		if err := need(len(c.IPs) > 0); err != nil {
			return nil, err
		}
	case kindDate:
		if err := need(c.Date != nil); err != nil {
			return nil, err
		}
	case kindDayOfWeek:
		if err := need(c.DayOfWeek != nil); err != nil {
			return nil, err
		}
	case kindTimeOfDay:
		if err := need(c.TimeOfDay != nil); err != nil {
			return nil, err
		}
	}

	switch c.Name {
	case "accept":
		return func(*Input) (bool, Reasons) { return true, ReasonAccept }, nil
	case "reject":
		return func(*Input) (bool, Reasons) { return false, ReasonReject }, nil
	case "authenticated_user":
		return func(in *Input) (bool, Reasons) {
			switch {
			case in.Session == nil:
				return false, ReasonUserUnauthenticated
			case in.Session.UserID != "":
				return true, ReasonUserOK
			}
			return false, ReasonUserUnauthorized
		}, nil
	case "cors_preflight":
		return func(in *Input) (bool, Reasons) {
			// direct map reads with canonical keys: Header.Get would
			// canonicalize on every call
			if in.Method == "OPTIONS" && len(in.Headers["Access-Control-Request-Method"]) > 0 && len(in.Headers["Origin"]) > 0 {
				return true, ReasonCORSRequest
			}
			return false, ReasonNonCORSRequest
		}, nil
	case "pomerium_routes":
		return func(in *Input) (bool, Reasons) {
			if strings.HasPrefix(in.Path, "/.pomerium/") || in.Path == "/.pomerium" {
				return true, ReasonPomeriumRoute
			}
			return false, ReasonNonPomeriumRoute
		}, nil
	case "http_method":
		m := compileStringMatcher(c.String, true)
		return requestCriterion(ReasonHTTPMethodOK, ReasonHTTPMethodUnauthorized, func(in *Input) bool { return m(in.Method) }), nil
	case "http_path":
		m := compileStringMatcher(c.String, false)
		return requestCriterion(ReasonHTTPPathOK, ReasonHTTPPathUnauthorized, func(in *Input) bool { return m(in.Path) }), nil
	case "source_ip":
		ips := slices.Clone(c.IPs)
		return requestCriterion(ReasonSourceIPOK, ReasonSourceIPUnauthorized, func(in *Input) bool {
			a := in.SourceIP.Unmap().WithZone("")
			for _, p := range ips {
				if p.Contains(a) {
					return true
				}
			}
			return false
		}), nil
	case "date":
		m := *c.Date
		return requestCriterion(ReasonDateOK, ReasonDateUnauthorized, func(in *Input) bool {
			t := now(in)
			return (m.After.IsZero() || t.After(m.After)) && (m.Before.IsZero() || t.Before(m.Before))
		}), nil
	case "day_of_week":
		m := *c.DayOfWeek
		return requestCriterion(ReasonDayOfWeekOK, ReasonDayOfWeekUnauthorized, func(in *Input) bool {
			return m.Days[now(in).In(m.Location).Weekday()]
		}), nil
	case "time_of_day":
		m := *c.TimeOfDay
		return requestCriterion(ReasonTimeOfDayOK, ReasonTimeOfDayUnauthorized, func(in *Input) bool {
			return m.match(now(in))
		}), nil
	case "email":
		m := compileStringMatcher(c.String, true)
		return sessionCriterion(ReasonEmailOK, ReasonEmailUnauthorized, func(s *Subject) bool { return m(s.Email) }), nil
	case "domain":
		m := compileStringMatcher(c.String, true)
		return sessionCriterion(ReasonDomainOK, ReasonDomainUnauthorized, func(s *Subject) bool {
			d, ok := emailDomain(s.Email)
			return ok && m(d)
		}), nil
	case "user":
		m := compileStringMatcher(c.String, false)
		return sessionCriterion(ReasonUserOK, ReasonUserUnauthorized, func(s *Subject) bool { return m(s.UserID) }), nil
	case "groups":
		m := compileListMatcher(c.List)
		return sessionCriterion(ReasonGroupsOK, ReasonGroupsUnauthorized, func(s *Subject) bool { return m(s.Groups) }), nil
	case "claim":
		m := compileListMatcher(c.List)
		name := c.SubPath
		return sessionCriterion(ReasonClaimOK, ReasonClaimUnauthorized, func(s *Subject) bool { return m(s.Claims[name]) }), nil
	}
	return nil, bad("criterion %q is unknown", c.Name)
}

// emailDomain returns the part of email after the '@' (up to a second '@',
// as Pomerium's split(email, "@")[1]); false when there is no '@'.
func emailDomain(email string) (string, bool) {
	_, d, ok := strings.Cut(email, "@")
	if !ok {
		return "", false
	}
	if i := strings.IndexByte(d, '@'); i >= 0 {
		d = d[:i]
	}
	return d, true
}

func requestCriterion(ok, fail Reasons, f func(*Input) bool) evalFunc {
	return func(in *Input) (bool, Reasons) {
		if f(in) {
			return true, ok
		}
		return false, fail
	}
}

// sessionCriterion wraps a criterion that needs a user: without a session
// it is false with user-unauthenticated.
func sessionCriterion(ok, fail Reasons, f func(*Subject) bool) evalFunc {
	return func(in *Input) (bool, Reasons) {
		if in.Session == nil {
			return false, ReasonUserUnauthenticated
		}
		if f(in.Session) {
			return true, ok
		}
		return false, fail
	}
}

// hashThreshold is the list length from which `in` uses a map instead of
// a linear scan.
const hashThreshold = 8

func compileStringMatcher(m *StringMatcher, fold bool) func(string) bool {
	fs := make([]func(string) bool, 0, len(m.Ops))
	for _, op := range m.Ops {
		fs = append(fs, compileStringOp(op, fold))
	}
	if len(fs) == 1 {
		return fs[0]
	}
	return func(s string) bool {
		for _, f := range fs {
			if !f(s) {
				return false
			}
		}
		return true
	}
}

func compileStringOp(op StringOp, fold bool) func(string) bool {
	v := op.Value
	if fold {
		v = strings.ToLower(v)
	}
	switch op.Op {
	case "is":
		if fold {
			return func(s string) bool { return strings.EqualFold(s, v) }
		}
		return func(s string) bool { return s == v }
	case "not":
		if fold {
			return func(s string) bool { return !strings.EqualFold(s, v) }
		}
		return func(s string) bool { return s != v }
	case "contains":
		if fold {
			return func(s string) bool { return containsFold(s, v) }
		}
		return func(s string) bool { return strings.Contains(s, v) }
	case "starts_with":
		if fold {
			return func(s string) bool { return len(s) >= len(v) && strings.EqualFold(s[:len(v)], v) }
		}
		return func(s string) bool { return strings.HasPrefix(s, v) }
	case "ends_with":
		if fold {
			return func(s string) bool { return len(s) >= len(v) && strings.EqualFold(s[len(s)-len(v):], v) }
		}
		return func(s string) bool { return strings.HasSuffix(s, v) }
	case "in", "not_in":
		in := compileSet(op.Values, fold)
		if op.Op == "not_in" {
			return func(s string) bool { return !in(s) }
		}
		return in
	}
	panic("policy: unknown string operator " + op.Op) // compileCriterion checked the operators
}

// compileSet returns a membership test for values: a linear scan for
// short lists, a map for long ones.
func compileSet(values []string, fold bool) func(string) bool {
	vs := slices.Clone(values)
	if fold {
		for i := range vs {
			vs[i] = strings.ToLower(vs[i])
		}
	}
	if len(vs) < hashThreshold {
		if fold {
			return func(s string) bool {
				for _, v := range vs {
					if strings.EqualFold(s, v) {
						return true
					}
				}
				return false
			}
		}
		return func(s string) bool { return slices.Contains(vs, s) }
	}
	set := make(map[string]struct{}, len(vs))
	for _, v := range vs {
		set[v] = struct{}{}
	}
	if !fold {
		return func(s string) bool { _, ok := set[s]; return ok }
	}
	return func(s string) bool {
		// Lower-case into a stack buffer; m[string(b)] does not allocate.
		var buf [128]byte
		if b, ok := lowerASCII(buf[:0], s); ok {
			_, hit := set[string(b)]
			return hit
		}
		_, hit := set[strings.ToLower(s)] // long or non-ASCII: rare, may allocate
		return hit
	}
}

// lowerASCII appends the lower-case form of s to dst when s is ASCII and
// fits in dst's capacity.
func lowerASCII(dst []byte, s string) ([]byte, bool) {
	if len(s) > cap(dst) {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return nil, false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// containsFold reports whether substr (lower-case) is in s, ignoring case,
// without allocating.
func containsFold(s, substr string) bool {
	if substr == "" {
		return true
	}
	for i := 0; i+len(substr) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(substr)], substr) {
			return true
		}
	}
	return false
}

func compileListMatcher(m *ListMatcher) func([]string) bool {
	fs := make([]func([]string) bool, 0, len(m.Ops))
	for _, op := range m.Ops {
		fs = append(fs, compileListOp(op))
	}
	if len(fs) == 1 {
		return fs[0]
	}
	return func(l []string) bool {
		for _, f := range fs {
			if !f(l) {
				return false
			}
		}
		return true
	}
}

func compileListOp(op ListOp) func([]string) bool {
	switch op.Op {
	case "has", "exclude":
		in := compileSet(op.Values, false)
		hasAny := func(l []string) bool {
			for _, x := range l {
				if in(x) {
					return true
				}
			}
			return false
		}
		if op.Op == "exclude" {
			return func(l []string) bool { return !hasAny(l) }
		}
		return hasAny
	case "is":
		v := op.Values[0]
		return func(l []string) bool { return len(l) == 1 && l[0] == v }
	}
	panic("policy: unknown list operator " + op.Op) // compileCriterion checked the operators
}
