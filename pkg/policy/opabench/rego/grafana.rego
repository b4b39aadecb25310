package pomerium.policy

# - allow: {or: [{domain: {is: example.com}}]}

domain_0 := [true, {"domain-ok"}] if {
	email_domain == "example.com"
} else := [false, {"domain-unauthorized"}] if {
	input.session
} else := [false, {"user-unauthenticated"}]

allow := merge_with_or([merge_with_or([domain_0])])
