package authenticate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/databroker"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
)

// ErrDataBroker means the databroker could not be reached or refused a
// write; the request gets a 503 page.
var ErrDataBroker = errors.New("the session store (databroker) is unavailable")

// rpcContext bounds one databroker call by authenticate_databroker_timeout
// (default 3 s): most are made while a browser waits, which must get a
// clear page quickly when no databroker answers (the connection waits for
// a ready replica, so without this bound a call waits out the whole
// deadline).
func (s *Service) rpcContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := config.DefaultAuthenticateDataBrokerTimeout
	if st := s.state.Load(); st != nil {
		d = st.cfg.AuthenticateDataBrokerWait()
	}
	return context.WithTimeout(ctx, d)
}

// newSessionID returns a fresh random session id.
func newSessionID() string { return cryptutil.RandomToken(24) }

// buildRecords makes the user and session of a fresh sign-in.
func buildRecords(res *tokenResult, sessionID string, now time.Time, lifetime time.Duration) (*userv1.User, *sessionv1.Session, error) {
	sub, _ := res.claims["sub"].(string)
	if sub == "" {
		return nil, nil, errors.New("the ID token has no subject")
	}
	claims := toClaims(res.claims)
	user := &userv1.User{
		Id:     sub,
		Email:  claimString(res.claims, "email"),
		Name:   displayName(res.claims),
		Claims: claims,
	}
	sess := &sessionv1.Session{
		Id:         sessionID,
		UserId:     sub,
		IdToken:    idTokenProto(res),
		OauthToken: oauthTokenProto(res.token),
		Claims:     cloneClaims(claims),
		IssuedAt:   timestamppb.New(now),
		ExpiresAt:  timestamppb.New(now.Add(lifetime)),
		AccessedAt: timestamppb.New(now),
	}
	return user, sess, nil
}

func idTokenProto(res *tokenResult) *sessionv1.IDToken {
	if res.idToken == nil {
		return nil
	}
	return &sessionv1.IDToken{
		Issuer:    res.idToken.Issuer,
		Subject:   res.idToken.Subject,
		ExpiresAt: timestamppb.New(res.idToken.Expiry),
		IssuedAt:  timestamppb.New(res.idToken.IssuedAt),
		Raw:       res.rawID,
	}
}

func oauthTokenProto(t *oauth2.Token) *sessionv1.OAuthToken {
	o := &sessionv1.OAuthToken{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken}
	if !t.Expiry.IsZero() {
		o.ExpiresAt = timestamppb.New(t.Expiry)
	}
	return o
}

// displayName is the name claim, else given and family names, else the
// preferred user name.
func displayName(c map[string]any) string {
	if n := claimString(c, "name"); n != "" {
		return n
	}
	if n := strings.TrimSpace(claimString(c, "given_name") + " " + claimString(c, "family_name")); n != "" {
		return n
	}
	return claimString(c, "preferred_username")
}

func claimString(c map[string]any, k string) string {
	switch v := c[k].(type) {
	case string:
		return v
	case []any:
		if len(v) > 0 {
			s, _ := v[0].(string)
			return s
		}
	}
	return ""
}

// toClaims converts JSON claims to the records' form: every value a list.
// Values that protobuf's Struct cannot hold are skipped.
func toClaims(c map[string]any) map[string]*structpb.ListValue {
	out := make(map[string]*structpb.ListValue, len(c))
	for k, v := range c {
		var items []any
		switch v := v.(type) {
		case []any:
			items = v
		case []string:
			for _, s := range v {
				items = append(items, s)
			}
		case nil:
			items = []any{}
		default:
			items = []any{v}
		}
		lv, err := structpb.NewList(normalizeJSON(items))
		if err != nil {
			continue
		}
		out[k] = lv
	}
	return out
}

// normalizeJSON turns values structpb does not know (json.Number, typed
// maps) into the plain JSON forms it does.
func normalizeJSON(items []any) []any {
	for i, v := range items {
		switch v.(type) {
		case string, bool, float64, nil, map[string]any, []any:
		default:
			b, err := json.Marshal(v)
			if err != nil {
				items[i] = fmt.Sprint(v)
				continue
			}
			var x any
			if json.Unmarshal(b, &x) == nil {
				items[i] = x
			}
		}
	}
	return items
}

func cloneClaims(c map[string]*structpb.ListValue) map[string]*structpb.ListValue {
	out := make(map[string]*structpb.ListValue, len(c))
	for k, v := range c {
		out[k] = proto.Clone(v).(*structpb.ListValue)
	}
	return out
}

// claimStrings returns a claim's values as strings (JSON for non-strings).
func claimStrings(c map[string]*structpb.ListValue, k string) []string {
	lv := c[k]
	if lv == nil {
		return nil
	}
	out := make([]string, 0, len(lv.Values))
	for _, v := range lv.Values {
		if s, ok := v.Kind.(*structpb.Value_StringValue); ok {
			out = append(out, s.StringValue)
			continue
		}
		b, _ := v.MarshalJSON()
		out = append(out, string(b))
	}
	return out
}

// claimsJSON returns claims as a JSON-friendly map of lists.
func claimsJSON(c map[string]*structpb.ListValue) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		out[k] = v.AsSlice()
	}
	return out
}

func record(typ, id string, m proto.Message) (*databrokerv1.Record, error) {
	data, err := anypb.New(m)
	if err != nil {
		return nil, err
	}
	return &databrokerv1.Record{Type: typ, Id: id, Data: data}, nil
}

// putSignIn writes the user and the session of a sign-in in one Put and
// returns the store's server version and the session record's version.
func (s *Service) putSignIn(ctx context.Context, user *userv1.User, sess *sessionv1.Session) (serverVersion, recordVersion uint64, err error) {
	ur, err := record(databroker.UserType, user.Id, user)
	if err != nil {
		return 0, 0, err
	}
	sr, err := record(databroker.SessionType, sess.Id, sess)
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := s.rpcContext(ctx)
	defer cancel()
	resp, err := s.databroker.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{ur, sr}})
	if err != nil {
		return 0, 0, fmt.Errorf("%w: put session: %v", ErrDataBroker, status.Convert(err).Message())
	}
	for _, r := range resp.GetRecords() {
		if r.GetType() == databroker.SessionType && r.GetId() == sess.Id {
			recordVersion = r.GetVersion()
		}
	}
	return resp.GetServerVersion(), recordVersion, nil
}

// getSession returns a live, unexpired session, or nil when there is none.
func (s *Service) getSession(ctx context.Context, id string, now time.Time) (*sessionv1.Session, error) {
	sess, err := getLive[*sessionv1.Session](ctx, s, id, "session")
	if err != nil || sess == nil {
		return nil, err
	}
	if sess.GetExpiresAt() != nil && !now.Before(sess.GetExpiresAt().AsTime()) {
		return nil, nil
	}
	return sess, nil
}

// getUser returns a user, or nil when there is none.
func (s *Service) getUser(ctx context.Context, id string) (*userv1.User, error) {
	return getLive[*userv1.User](ctx, s, id, "user")
}

// getLive returns the live record id of T's record type, or nil when there
// is none (missing, deleted, or not a T). what names it in errors.
func getLive[T proto.Message](ctx context.Context, s *Service, id, what string) (T, error) {
	var none T
	ctx, cancel := s.rpcContext(ctx)
	defer cancel()
	resp, err := s.databroker.Get(ctx, &databrokerv1.GetRequest{Type: databroker.TypeURL(none), Id: id})
	if status.Code(err) == codes.NotFound {
		return none, nil
	}
	if err != nil {
		return none, fmt.Errorf("%w: get %s: %v", ErrDataBroker, what, status.Convert(err).Message())
	}
	rec := resp.GetRecord()
	if rec == nil || rec.GetDeletedAt() != nil {
		return none, nil
	}
	v, err := databroker.Unmarshal[T](rec)
	if err != nil {
		return none, nil // not a T: treat as absent
	}
	return v, nil
}

// touchSession sets a session's accessed_at. It returns the store's server
// version and the record's new version; ok is false when the session no
// longer exists (a patch never recreates a deleted record).
func (s *Service) touchSession(ctx context.Context, id string, now time.Time) (serverVersion, recordVersion uint64, ok bool, err error) {
	r, err := record(databroker.SessionType, id, &sessionv1.Session{Id: id, AccessedAt: timestamppb.New(now)})
	if err != nil {
		return 0, 0, false, err
	}
	ctx, cancel := s.rpcContext(ctx)
	defer cancel()
	resp, err := s.databroker.Patch(ctx, &databrokerv1.PatchRequest{
		Records:   []*databrokerv1.Record{r},
		FieldMask: &fieldmaskpb.FieldMask{Paths: []string{"accessed_at"}},
	})
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: patch session: %v", ErrDataBroker, status.Convert(err).Message())
	}
	i := slices.IndexFunc(resp.GetRecords(), func(r *databrokerv1.Record) bool { return r.GetId() == id })
	if i < 0 {
		return 0, 0, false, nil
	}
	return resp.GetServerVersion(), resp.GetRecords()[i].GetVersion(), true, nil
}

// deleteSession deletes a session record.
func (s *Service) deleteSession(ctx context.Context, id string) error {
	ctx, cancel := s.rpcContext(ctx)
	defer cancel()
	_, err := s.databroker.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{{
		Type: databroker.SessionType, Id: id, DeletedAt: timestamppb.Now(),
	}}})
	if err != nil {
		return fmt.Errorf("%w: delete session: %v", ErrDataBroker, status.Convert(err).Message())
	}
	return nil
}
