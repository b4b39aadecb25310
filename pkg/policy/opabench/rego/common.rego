package pomerium.policy

# Result merging as Pomerium's generated Rego does it: a result is
# [value, set of reasons]; `and`/`or` keep the reasons of the members that
# share the merged value; not/nor invert each member first.

merge_with_and(results) := [true, reasons] if {
	true_results := [x | some x in results; x[0]]
	count(true_results) == count(results)
	reasons := union({x[1] | some x in true_results})
} else := [false, reasons] if {
	false_results := [x | some x in results; not x[0]]
	reasons := union({x[1] | some x in false_results})
}

merge_with_or(results) := [true, reasons] if {
	true_results := [x | some x in results; x[0]]
	count(true_results) > 0
	reasons := union({x[1] | some x in true_results})
} else := [false, reasons] if {
	false_results := [x | some x in results; not x[0]]
	reasons := union({x[1] | some x in false_results})
}

invert(v) := [false, v[1]] if {
	v[0]
} else := [true, v[1]]

default allow := [false, set()]

default deny := [false, set()]

# email_domain is the part of the session's email after '@' (compared
# exactly, as Pomerium does).
email_domain := split(input.session.email, "@")[1]
