package policy

// rejectCriterion is `reject: true`: always false.
var rejectCriterion = flagCriterion{key: "reject", data: needsRequest, ok: ReasonReject, fail: ReasonReject,
	test: func(*Input) bool { return false }}
