package policy

import "strings"

// pomeriumRoutesCriterion is `pomerium_routes: true`: the request is for
// the proxy's own pages under /.pomerium/.
var pomeriumRoutesCriterion = flagCriterion{key: "pomerium_routes", data: needsRequest, ok: ReasonPomeriumRoute, fail: ReasonNonPomeriumRoute,
	test: func(in *Input) bool { return strings.HasPrefix(in.Path, "/.pomerium/") || in.Path == "/.pomerium" }}
