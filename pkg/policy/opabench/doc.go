// Package opa benchmarks gatehouse's compiled PPL evaluator (pkg/policy)
// against the same policies written by hand in Rego and evaluated with
// OPA the way Pomerium does: one prepared query per policy, evaluated per
// request with an input document built for that request.
//
// It is a separate module so that the product never depends on OPA.
//
//	go test -bench . -benchmem            # ns/op and allocs/op, side by side
//	go test -run TestRatio -ratio -v      # a table with the ratio
package opa
