package policy

// rejectCriterion is `reject: true`: always false.
type rejectCriterion struct{}

func (rejectCriterion) name() string       { return "reject" }
func (rejectCriterion) takes() valueKind   { return flagValue{} }
func (rejectCriterion) needs() subjectData { return needsRequest }
func (rejectCriterion) compile(*Criterion) check {
	return check{test: func(*Input) bool { return false }, ok: ReasonReject, fail: ReasonReject}
}
