package policy

import "strings"

// pomeriumRoutesCriterion is `pomerium_routes: true`: the request is for
// the proxy's own pages under /.pomerium/.
type pomeriumRoutesCriterion struct{}

func (pomeriumRoutesCriterion) name() string       { return "pomerium_routes" }
func (pomeriumRoutesCriterion) takes() valueKind   { return flagValue{} }
func (pomeriumRoutesCriterion) needs() subjectData { return needsRequest }
func (pomeriumRoutesCriterion) compile(*Criterion) check {
	return check{
		test: func(in *Input) bool { return strings.HasPrefix(in.Path, "/.pomerium/") || in.Path == "/.pomerium" },
		ok:   ReasonPomeriumRoute, fail: ReasonNonPomeriumRoute,
	}
}
