package policy

// httpPathCriterion matches the request path with a string matcher.
var httpPathCriterion = stringCriterion{key: "http_path", data: needsRequest, ok: ReasonHTTPPathOK, fail: ReasonHTTPPathUnauthorized,
	read: func(in *Input) (string, bool) { return in.Path, true }}
