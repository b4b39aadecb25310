package grpcutil

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef")
	otherKey = []byte("fedcba9876543210fedcba9876543210")
)

// testService panics on UnaryCall so that recovery can be tested.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (testService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

func (testService) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	panic("boom")
}

func startServer(t *testing.T) string {
	t.Helper()
	s := NewServer(ServerOptions{SharedKey: testKey})
	testgrpc.RegisterTestServiceServer(s, testService{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func rawConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestServerTokenAuth(t *testing.T) {
	addr := startServer(t)
	cc := rawConn(t, addr)
	client := testgrpc.NewTestServiceClient(cc)
	now := time.Now()
	good, _ := NewServiceToken(testKey, time.Minute, now)
	expired, _ := NewServiceToken(testKey, time.Minute, now.Add(-time.Hour))
	wrong, _ := NewServiceToken(otherKey, time.Minute, now)

	tests := []struct {
		name string
		md   metadata.MD
		want codes.Code
	}{
		{"bearer", metadata.Pairs("authorization", "Bearer "+good), codes.OK},
		{"bearer lower case", metadata.Pairs("authorization", "bearer "+good), codes.OK},
		{"pomerium jwt metadata", metadata.Pairs("jwt", good), codes.OK},
		{"missing", metadata.MD{}, codes.Unauthenticated},
		{"expired", metadata.Pairs("authorization", "Bearer "+expired), codes.Unauthenticated},
		{"wrong secret", metadata.Pairs("authorization", "Bearer "+wrong), codes.Unauthenticated},
		{"garbage", metadata.Pairs("jwt", "not.a.token"), codes.Unauthenticated},
		{"alg none", metadata.Pairs("jwt", "eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDB9."), codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.NewOutgoingContext(context.Background(), tt.md)
			_, err := client.EmptyCall(ctx, &testgrpc.Empty{})
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code = %v, want %v (err %v)", got, tt.want, err)
			}
		})
	}
}

func TestHealthAndReflectionAreOpen(t *testing.T) {
	cc := rawConn(t, startServer(t))
	resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	addr := startServer(t)
	cc, err := Dial(ClientOptions{Targets: []*url.URL{{Scheme: "http", Host: addr}}, SharedKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := testgrpc.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); status.Code(err) != codes.Internal {
		t.Fatalf("panic: got %v, want Internal", err)
	}
	// The server lives on.
	if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
		t.Fatalf("after panic: %v", err)
	}
}

func TestDialBalancesAcrossReplicas(t *testing.T) {
	a, b := startServer(t), startServer(t)
	cc, err := Dial(ClientOptions{Targets: []*url.URL{{Scheme: "http", Host: a}, {Scheme: "http", Host: b}}, SharedKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := testgrpc.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 10; i++ {
		if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}, grpc.WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDialWrongSecretIsUnauthenticated(t *testing.T) {
	addr := startServer(t)
	cc, err := Dial(ClientOptions{Targets: []*url.URL{{Scheme: "http", Host: addr}}, SharedKey: otherKey})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = testgrpc.NewTestServiceClient(cc).EmptyCall(ctx, &testgrpc.Empty{}, grpc.WaitForReady(true))
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("got %v, want Unauthenticated", err)
	}
}

// hs256 signs claims with key under the given JOSE header, by hand, so
// tests can make tokens NewServiceToken never would.
func hs256(t *testing.T, key []byte, header, claims map[string]any) string {
	t.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var header = map[string]any{"alg": "HS256", "typ": "JWT"}

func TestNewServiceTokenTTL(t *testing.T) {
	for _, ttl := range []time.Duration{0, -time.Minute, 25 * time.Hour} {
		if _, err := NewServiceToken(testKey, ttl, time.Now()); !errors.Is(err, ErrTokenTTL) {
			t.Errorf("ttl %s: got %v, want ErrTokenTTL", ttl, err)
		}
	}
}

func TestVerifyServiceToken(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	good, _ := NewServiceToken(testKey, time.Minute, now)
	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"valid", good, now, nil},
		{"within leeway", good, now.Add(time.Minute + 10*time.Second), nil},
		{"expired", good, now.Add(2 * time.Minute), ErrTokenExpired},
		{"missing", "", now, ErrTokenMissing},
		{"two parts", "a.b", now, ErrTokenInvalid},
		{"tampered", good[:len(good)-2] + "AA", now, ErrTokenSignature},
		{"24h is the bound", hs256(t, testKey, header, map[string]any{"exp": now.Add(24 * time.Hour).Unix()}), now, nil},
		{"beyond 24h", hs256(t, testKey, header, map[string]any{"exp": now.Add(25 * time.Hour).Unix()}), now, ErrTokenLifetime},
		{"no exp", hs256(t, testKey, header, map[string]any{"iat": now.Unix()}), now, ErrTokenInvalid},
		{"exp not a number", hs256(t, testKey, header, map[string]any{"exp": "soon"}), now, ErrTokenInvalid},
		{"nbf ahead", hs256(t, testKey, header, map[string]any{"exp": now.Add(time.Minute).Unix(), "nbf": now.Add(time.Hour).Unix()}), now, ErrTokenInvalid},
		{"session handle claims", hs256(t, testKey, header, map[string]any{"exp": now.Add(time.Minute).Unix(), "jti": "sess", "sub": "user"}), now, ErrTokenClaims},
		{"aud", hs256(t, testKey, header, map[string]any{"exp": now.Add(time.Minute).Unix(), "aud": "x"}), now, ErrTokenClaims},
		{"iss", hs256(t, testKey, header, map[string]any{"exp": now.Add(time.Minute).Unix(), "iss": "x"}), now, ErrTokenClaims},
		{"kid header", hs256(t, testKey, map[string]any{"alg": "HS256", "kid": "k"}, map[string]any{"exp": now.Add(time.Minute).Unix()}), now, ErrTokenInvalid},
		{"alg none", hs256(t, testKey, map[string]any{"alg": "none"}, map[string]any{"exp": now.Add(time.Minute).Unix()}), now, ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifyServiceToken(testKey, tt.token, tt.at); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}
