package policy

// acceptCriterion is `accept: true`: always true, for anyone.
type acceptCriterion struct{}

func (acceptCriterion) name() string       { return "accept" }
func (acceptCriterion) takes() valueKind   { return flagValue{} }
func (acceptCriterion) needs() subjectData { return needsRequest }
func (acceptCriterion) compile(*Criterion) check {
	return check{test: func(*Input) bool { return true }, ok: ReasonAccept, fail: ReasonAccept}
}
