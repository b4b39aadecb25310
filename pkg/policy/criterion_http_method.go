package policy

// httpMethodCriterion matches the request method with a string matcher.
var httpMethodCriterion = stringCriterion{key: "http_method", data: needsRequest, ok: ReasonHTTPMethodOK, fail: ReasonHTTPMethodUnauthorized,
	read: func(in *Input) (string, bool) { return in.Method, true }}
