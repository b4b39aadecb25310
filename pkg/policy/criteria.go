package policy

// criteria lists every criterion gatehouse evaluates, each once. Parsing,
// the "did you mean" suggestions and compilation all read this list.
//
// To add a criterion: write criterion_<name>.go with a value implementing
// criterion (a stringCriterion or flagCriterion when it matches one string
// or takes no matcher; otherwise a type of its own reusing listValue or a
// valueKind written next to it), add it here, and add its reasons to
// reasons.go when it has new ones.
var criteria = []criterion{
	acceptCriterion,
	rejectCriterion,
	authenticatedUserCriterion,
	corsPreflightCriterion,
	pomeriumRoutesCriterion,
	domainCriterion,
	emailCriterion,
	userCriterion,
	groupsCriterion{},
	claimCriterion{},
	httpMethodCriterion,
	httpPathCriterion,
	sourceIPCriterion{},
	clientCertificateCriterion{},
	invalidClientCertificateCriterion{},
	dateCriterion{},
	dayOfWeekCriterion{},
	timeOfDayCriterion{},
}

// unsupportedCriteria are Pomerium criteria that need features gatehouse
// does not have (device identity, external data, MCP, SSH). They get
// their own error so that nobody mistakes them for a typo.
var unsupportedCriteria = []string{
	"device", "mcp_method",
	"mcp_tool", "record", "ssh_access_request", "ssh_publickey", "ssh_username",
	"ssh_username_matches_claim", "ssh_username_matches_email",
}
