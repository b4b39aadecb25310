package policy

import (
	"math/bits"
	"strings"
)

// Reasons is a set of policy reasons, one bit per reason. It is a value
// type so that evaluating a policy never allocates; String and Slice turn
// it into Pomerium's reason names (sorted, as Pomerium reports them).
type Reasons uint64

// Reasons reported by criteria. The names are Pomerium's; the bits are in
// alphabetical order of the names so that iteration yields sorted names.
// date, day_of_week and time_of_day are Pomerium Enterprise criteria whose
// reason names Pomerium does not publish; gatehouse names them in the same
// style (<criterion>-ok, <criterion>-unauthorized).
const (
	ReasonAccept                        Reasons = 1 << iota // accept
	ReasonClaimOK                                           // claim-ok
	ReasonClaimUnauthorized                                 // claim-unauthorized
	ReasonClientCertificateOK                               // client-certificate-ok
	ReasonClientCertificateRequired                         // client-certificate-required: no client certificate was presented
	ReasonClientCertificateUnauthorized                     // client-certificate-unauthorized
	ReasonCORSRequest                                       // cors-request
	ReasonDateOK                                            // date-ok
	ReasonDateUnauthorized                                  // date-unauthorized
	ReasonDayOfWeekOK                                       // day-of-week-ok
	ReasonDayOfWeekUnauthorized                             // day-of-week-unauthorized
	ReasonDomainOK                                          // domain-ok
	ReasonDomainUnauthorized                                // domain-unauthorized
	ReasonEmailOK                                           // email-ok
	ReasonEmailUnauthorized                                 // email-unauthorized
	ReasonGroupsOK                                          // groups-ok
	ReasonGroupsUnauthorized                                // groups-unauthorized
	ReasonHTTPMethodOK                                      // http-method-ok
	ReasonHTTPMethodUnauthorized                            // http-method-unauthorized
	ReasonHTTPPathOK                                        // http-path-ok
	ReasonHTTPPathUnauthorized                              // http-path-unauthorized
	ReasonInvalidClientCertificate                          // invalid-client-certificate: presented, but not valid
	ReasonNonCORSRequest                                    // non-cors-request
	ReasonNonPomeriumRoute                                  // non-pomerium-route
	ReasonPomeriumRoute                                     // pomerium-route
	ReasonReject                                            // reject
	ReasonSourceIPOK                                        // source-ip-ok
	ReasonSourceIPUnauthorized                              // source-ip-unauthorized
	ReasonTimeOfDayOK                                       // time-of-day-ok
	ReasonTimeOfDayUnauthorized                             // time-of-day-unauthorized
	ReasonUserOK                                            // user-ok
	ReasonUserUnauthenticated                               // user-unauthenticated: the user must sign in
	ReasonUserUnauthorized                                  // user-unauthorized
	ReasonValidClientCertificate                            // valid-client-certificate

	numReasons = iota
)

var reasonNames = [numReasons]string{
	"accept",
	"claim-ok",
	"claim-unauthorized",
	"client-certificate-ok",
	"client-certificate-required",
	"client-certificate-unauthorized",
	"cors-request",
	"date-ok",
	"date-unauthorized",
	"day-of-week-ok",
	"day-of-week-unauthorized",
	"domain-ok",
	"domain-unauthorized",
	"email-ok",
	"email-unauthorized",
	"groups-ok",
	"groups-unauthorized",
	"http-method-ok",
	"http-method-unauthorized",
	"http-path-ok",
	"http-path-unauthorized",
	"invalid-client-certificate",
	"non-cors-request",
	"non-pomerium-route",
	"pomerium-route",
	"reject",
	"source-ip-ok",
	"source-ip-unauthorized",
	"time-of-day-ok",
	"time-of-day-unauthorized",
	"user-ok",
	"user-unauthenticated",
	"user-unauthorized",
	"valid-client-certificate",
}

// ReasonByName returns the reason with Pomerium's name name
// ("email-ok"), or false when there is none.
func ReasonByName(name string) (Reasons, bool) {
	for i, n := range reasonNames {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// Has reports whether every reason in x is in r.
func (r Reasons) Has(x Reasons) bool { return r&x == x }

// Len returns the number of reasons in r.
func (r Reasons) Len() int { return bits.OnesCount64(uint64(r)) }

// Slice returns the names of the reasons in r, sorted; nil when r is empty.
func (r Reasons) Slice() []string {
	if r == 0 {
		return nil
	}
	out := make([]string, 0, r.Len())
	for i := 0; i < numReasons; i++ {
		if r&(1<<i) != 0 {
			out = append(out, reasonNames[i])
		}
	}
	return out
}

// String returns the sorted reason names joined by commas
// ("email-ok,groups-ok"), or "" when r is empty.
func (r Reasons) String() string {
	return strings.Join(r.Slice(), ",")
}

// MarshalText encodes r as String does, so reasons log and marshal as
// names rather than as a number.
func (r Reasons) MarshalText() ([]byte, error) { return []byte(r.String()), nil }
