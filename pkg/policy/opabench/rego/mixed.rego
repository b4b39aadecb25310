package pomerium.policy

# The "mixed" policy of pkg/policy's bench_test.go, by hand.

emails_1 := {"a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com", "f@x.com", "g@x.com", "h@x.com", "i@x.com", "j@x.com"}

methods_0 := {"GET", "HEAD", "POST"}

cidrs_0 := ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]

# rule 1: allow and [domain is example.com, groups has dev, http_method in ...]
domain_0 := [true, {"domain-ok"}] if {
	email_domain == "example.com"
} else := [false, {"domain-unauthorized"}] if {
	input.session
} else := [false, {"user-unauthenticated"}]

groups_0 := [true, {"groups-ok"}] if {
	"dev" in input.session.groups
} else := [false, {"groups-unauthorized"}] if {
	input.session
} else := [false, {"user-unauthenticated"}]

http_method_0 := [true, {"http-method-ok"}] if {
	input.http.method in methods_0
} else := [false, {"http-method-unauthorized"}]

and_0 := merge_with_and([domain_0, groups_0, http_method_0])

# rule 2: allow or [email in list, claim/department {has: eng, exclude: contractors}]
email_1 := [true, {"email-ok"}] if {
	input.session.email in emails_1
} else := [false, {"email-unauthorized"}] if {
	input.session
} else := [false, {"user-unauthenticated"}]

claim_1 := [true, {"claim-ok"}] if {
	values := object.get(input.session.claims, "department", [])
	"eng" in values
	not "contractors" in values
} else := [false, {"claim-unauthorized"}] if {
	input.session
} else := [false, {"user-unauthenticated"}]

or_1 := merge_with_or([email_1, claim_1])

# rule 3: allow and [http_path starts_with /public/, source_ip in ranges]
http_path_2 := [true, {"http-path-ok"}] if {
	startswith(input.http.path, "/public/")
} else := [false, {"http-path-unauthorized"}]

source_ip_2 := [true, {"source-ip-ok"}] if {
	count(net.cidr_contains_matches(cidrs_0, input.http.ip)) > 0
} else := [false, {"source-ip-unauthorized"}]

and_2 := merge_with_and([http_path_2, source_ip_2])

# rule 4: deny or [groups has suspended, email ends_with @evil.example]
groups_3 := [true, {"groups-ok"}] if {
	"suspended" in input.session.groups
} else := [false, {"groups-unauthorized"}] if {
	input.session
} else := [false, {"user-unauthenticated"}]

email_3 := [true, {"email-ok"}] if {
	endswith(input.session.email, "@evil.example")
} else := [false, {"email-unauthorized"}] if {
	input.session
} else := [false, {"user-unauthenticated"}]

or_3 := merge_with_or([groups_3, email_3])

# rule 5: deny not [time_of_day UTC 06:00-22:00]; allow nor [http_path starts_with /admin, user not_in [...]]
time_of_day_4 := [true, {"time-of-day-ok"}] if {
	clock := time.clock([input.now_ns, "UTC"])
	secs := ((clock[0] * 60) + clock[1]) * 60 + clock[2]
	secs >= 6 * 3600
	secs < 22 * 3600
} else := [false, {"time-of-day-unauthorized"}]

not_4 := merge_with_and([invert(time_of_day_4)])

http_path_5 := [true, {"http-path-ok"}] if {
	startswith(input.http.path, "/admin")
} else := [false, {"http-path-unauthorized"}]

user_5 := [true, {"user-ok"}] if {
	input.session
	not input.session.user_id in {"u-alice", "u-root"}
} else := [false, {"user-unauthorized"}] if {
	input.session
} else := [false, {"user-unauthenticated"}]

nor_5 := merge_with_or([invert(http_path_5), invert(user_5)])

allow := merge_with_or([and_0, or_1, and_2, nor_5])

deny := merge_with_or([or_3, not_4])
