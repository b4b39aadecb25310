package policy

// corsPreflightCriterion is `cors_preflight: true`: the request is a CORS
// preflight (OPTIONS with Access-Control-Request-Method and Origin).
type corsPreflightCriterion struct{}

func (corsPreflightCriterion) name() string       { return "cors_preflight" }
func (corsPreflightCriterion) takes() valueKind   { return flagValue{} }
func (corsPreflightCriterion) needs() subjectData { return needsRequest }
func (corsPreflightCriterion) compile(*Criterion) check {
	return check{
		test: func(in *Input) bool {
			// direct map reads with canonical keys: Header.Get would
			// canonicalize on every call
			return in.Method == "OPTIONS" && len(in.Headers["Access-Control-Request-Method"]) > 0 && len(in.Headers["Origin"]) > 0
		},
		ok: ReasonCORSRequest, fail: ReasonNonCORSRequest,
	}
}
