package extauthz

import (
	"strconv"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// ContextReuse, set to "true" in a CheckRequest's context extensions, asks
// authorize to say in an allowed answer what it depended on (a Reuse), so
// that a proxy which follows the databroker's changes can answer the same
// request again without asking. Only gatehouse's remote proxy sets it;
// other clients get the plain answer.
const ContextReuse = "gatehouse_reuse"

// reuseKey names the Reuse in a CheckResponse's dynamic_metadata.
const reuseKey = "gatehouse.reuse"

// Reuse says for how long, and on what, an allowed answer holds for the
// identical request: until Until, as long as neither the session nor its
// user changes after (ServerVersion, RecordVersion), the point in the
// databroker's change log at which authorize read them.
type Reuse struct {
	ServerVersion uint64
	RecordVersion uint64
	SessionID     string
	UserID        string
	Until         time.Time
}

// WithReuse returns resp (which is not modified: answers are shared) with
// u in its dynamic metadata.
func WithReuse(resp *authv3.CheckResponse, u Reuse) *authv3.CheckResponse {
	fields := map[string]*structpb.Value{
		"server_version": structpb.NewStringValue(strconv.FormatUint(u.ServerVersion, 10)),
		"record_version": structpb.NewStringValue(strconv.FormatUint(u.RecordVersion, 10)),
		"session_id":     structpb.NewStringValue(u.SessionID),
		"user_id":        structpb.NewStringValue(u.UserID),
		"until_unix_ms":  structpb.NewStringValue(strconv.FormatInt(u.Until.UnixMilli(), 10)),
	}
	return &authv3.CheckResponse{
		Status:       resp.GetStatus(),
		HttpResponse: resp.HttpResponse,
		DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			reuseKey: structpb.NewStructValue(&structpb.Struct{Fields: fields}),
		}},
	}
}

// ReuseOf returns the Reuse of an allowed answer, or false when it has
// none or a malformed one (the answer then serves its request only).
func ReuseOf(resp *authv3.CheckResponse) (Reuse, bool) {
	f := resp.GetDynamicMetadata().GetFields()[reuseKey].GetStructValue().GetFields()
	if f == nil || !Allowed(resp) {
		return Reuse{}, false
	}
	var u Reuse
	var err error
	if u.ServerVersion, err = strconv.ParseUint(f["server_version"].GetStringValue(), 10, 64); err != nil {
		return Reuse{}, false
	}
	if u.RecordVersion, err = strconv.ParseUint(f["record_version"].GetStringValue(), 10, 64); err != nil {
		return Reuse{}, false
	}
	ms, err := strconv.ParseInt(f["until_unix_ms"].GetStringValue(), 10, 64)
	if err != nil {
		return Reuse{}, false
	}
	u.Until = time.UnixMilli(ms)
	u.SessionID, u.UserID = f["session_id"].GetStringValue(), f["user_id"].GetStringValue()
	if u.SessionID == "" {
		return Reuse{}, false // nothing to follow a sign-out by
	}
	return u, true
}
