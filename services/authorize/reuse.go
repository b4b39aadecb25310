package authorize

import (
	"time"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
)

// MaxReuse bounds how long a proxy may answer a request again with an
// allowed answer of authorize's (extauthz.Reuse). A change of the session
// or its user reaches the proxy through its own Sync stream and ends the
// reuse at once; the bound covers what the change log does not carry: a
// policy reload on authorize that the proxy's configuration has not seen,
// and the passing of time in policies. It is well under jwtRefreshBefore,
// so a reused identity JWT is never near its expiry.
const MaxReuse = 10 * time.Second

// reuseOf is the Reuse of an allowed answer for ident, read at at: it holds
// until MaxReuse from now, the session's expiry or the handle's, whichever
// comes first.
func reuseOf(ident *identity, at readPoint, now time.Time) extauthz.Reuse {
	until := now.Add(MaxReuse)
	if !ident.expiresAt.IsZero() && ident.expiresAt.Before(until) {
		until = ident.expiresAt
	}
	if !at.handleExpiry.IsZero() && at.handleExpiry.Before(until) {
		until = at.handleExpiry
	}
	return extauthz.Reuse{
		ServerVersion: at.serverVersion,
		RecordVersion: at.recordVersion,
		SessionID:     ident.subject.SessionID,
		UserID:        ident.subject.UserID,
		Until:         until,
	}
}
