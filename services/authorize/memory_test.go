package authorize

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse/gatehouse/pkg/databroker"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
)

// realisticRecords returns a user and a session record as authenticate
// writes them after an OIDC sign-in: the ID token's claims, its raw form
// and the OAuth tokens.
func realisticRecords(i int) (user, session *databrokerv1.Record) {
	uid := fmt.Sprintf("%032x", i)
	sid := fmt.Sprintf("session-%022d", i)
	email := fmt.Sprintf("user%d@example.com", i)
	list := func(vs ...any) *structpb.ListValue {
		l, _ := structpb.NewList(vs)
		return l
	}
	claims := map[string]*structpb.ListValue{
		"iss": list("https://idp.example.com"), "sub": list(uid), "aud": list("gatehouse"),
		"exp": list(1.8e9), "iat": list(1.8e9), "auth_time": list(1.8e9), "nonce": list(strings.Repeat("n", 22)),
		"at_hash": list(strings.Repeat("h", 22)), "email": list(email), "email_verified": list(true),
		"name": list(fmt.Sprintf("User Number %d", i)), "groups": list("dev", "users"),
	}
	u := &userv1.User{Id: uid, Email: email, Name: fmt.Sprintf("User Number %d", i), Claims: claims}
	s := &sessionv1.Session{
		Id: sid, UserId: uid, Claims: claims,
		IdToken:    &sessionv1.IDToken{Issuer: "https://idp.example.com", Subject: uid, Raw: strings.Repeat("t", 900)},
		OauthToken: &sessionv1.OAuthToken{AccessToken: strings.Repeat("a", 43), RefreshToken: strings.Repeat("r", 43), TokenType: "Bearer"},
		IssuedAt:   timestamppb.Now(), ExpiresAt: timestamppb.New(time.Now().Add(14 * time.Hour)),
	}
	ud, _ := anypb.New(u)
	sd, _ := anypb.New(s)
	return &databrokerv1.Record{Type: databroker.UserType, Id: uid, Data: ud}, &databrokerv1.Record{Type: databroker.SessionType, Id: sid, Data: sd}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkSessionCacheMemory reports the heap that authorize's synced copy
// keeps per signed-in session (with its user), for 100,000 sessions.
func BenchmarkSessionCacheMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		records := make([]*databrokerv1.Record, 0, 2*n)
		for i := 0; i < n; i++ {
			u, s := realisticRecords(i)
			records = append(records, u, s)
		}
		st := newStore()
		before := heapInUse()
		for _, r := range records {
			st.apply(r)
		}
		after := heapInUse()
		runtime.KeepAlive(records)
		if st.get(fmt.Sprintf("session-%022d", n-1)) == nil {
			b.Fatal("session missing")
		}
		b.ReportMetric(float64(after-before)/n, "bytes/session")
		runtime.KeepAlive(st)
	}
}

// BenchmarkSessionLookup measures finding a session's identity in the
// synced copy, among 100,000 sessions: what every Check does.
func BenchmarkSessionLookup(b *testing.B) {
	const n = 100_000
	st := newStore()
	ids := make([]string, n)
	for i := 0; i < n; i++ {
		u, s := realisticRecords(i)
		st.apply(u)
		st.apply(s)
		ids[i] = s.Id
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if st.get(ids[i%n]) == nil {
			b.Fatal("missing")
		}
		i += 7919
	}
}
