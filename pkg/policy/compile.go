package policy

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
