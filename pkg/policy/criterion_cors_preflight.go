package policy

// corsPreflightCriterion is `cors_preflight: true`: the request is a CORS
// preflight (OPTIONS with Access-Control-Request-Method and Origin).
var corsPreflightCriterion = flagCriterion{key: "cors_preflight", data: needsRequest, ok: ReasonCORSRequest, fail: ReasonNonCORSRequest,
	test: func(in *Input) bool {
		// direct map reads with canonical keys: Header.Get would
		// canonicalize on every call
		return in.Method == "OPTIONS" && len(in.Headers["Access-Control-Request-Method"]) > 0 && len(in.Headers["Origin"]) > 0
	}}
