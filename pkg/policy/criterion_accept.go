package policy

// acceptCriterion is `accept: true`: always true, for anyone.
var acceptCriterion = flagCriterion{key: "accept", data: needsRequest, ok: ReasonAccept, fail: ReasonAccept,
	test: func(*Input) bool { return true }}
