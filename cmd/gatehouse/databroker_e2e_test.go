package main

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/grpcutil"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
)

type brokerProc struct {
	grpc, health string
	proc         *testutil.Process
	env          []string
}

func startBroker(t *testing.T, bin, redisURL string) *brokerProc {
	b := &brokerProc{grpc: testutil.FreeAddr(t), health: testutil.FreeAddr(t)}
	b.env = []string{"SERVICES=databroker", "SHARED_SECRET=" + testSecret, "GRPC_ADDRESS=" + b.grpc,
		"HEALTH_CHECK_ADDR=" + b.health, "DATABROKER_STORAGE_TYPE=redis", "DATABROKER_STORAGE_CONNECTION_STRING=" + redisURL}
	b.start(t, bin)
	return b
}

func (b *brokerProc) start(t *testing.T, bin string) {
	b.proc = testutil.StartProcess(t, "databroker "+b.grpc, bin, nil, b.env...)
	testutil.WaitHTTP(t, "http://"+b.health+"/readyz", 20*time.Second, b.proc)
}

func brokerClient(t *testing.T, addr string) databrokerv1.DataBrokerServiceClient {
	key, _ := cryptutil.DecodeSecret(testSecret)
	cc, err := grpcutil.Dial(grpcutil.ClientOptions{Targets: []*url.URL{{Scheme: "http", Host: addr}}, SharedKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return databrokerv1.NewDataBrokerServiceClient(cc)
}

func putUser(ctx context.Context, t *testing.T, c databrokerv1.DataBrokerServiceClient, id string) {
	data, _ := anypb.New(&userv1.User{Id: id, Email: id + "@example.com"})
	if _, err := c.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{{Type: data.TypeUrl, Id: id, Data: data}}}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("put %s: %v", id, err)
	}
}

// Two databroker processes share one Redis: a write through one reaches a
// Sync stream on the other, both report one server_version, and a restarted
// process serves every record.
func TestDataBrokerReplicasShareRedis(t *testing.T) {
	bin := testutil.Gatehouse(t)
	redis := testutil.StartRedis(t)
	a, b := startBroker(t, bin, redis.URL()), startBroker(t, bin, redis.URL())
	ca, cb := brokerClient(t, a.grpc), brokerClient(t, b.grpc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ia, err := ca.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	ib, err := cb.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if ia.ServerVersion != ib.ServerVersion {
		t.Fatalf("server versions differ: %d and %d", ia.ServerVersion, ib.ServerVersion)
	}

	stream, err := cb.Sync(ctx, &databrokerv1.SyncRequest{ServerVersion: ib.ServerVersion, RecordVersion: ib.LatestRecordVersion})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		putUser(ctx, t, ca, fmt.Sprintf("user-%d", i))
	}
	for i := 0; i < 5; i++ {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("user-%d", i); resp.GetRecord().GetId() != want {
			t.Fatalf("sync got %q, want %q", resp.GetRecord().GetId(), want)
		}
	}

	a.proc.Stop()
	a.start(t, bin)
	ca = brokerClient(t, a.grpc)
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("user-%d", i)
		got, err := ca.Get(ctx, &databrokerv1.GetRequest{Type: "type.googleapis.com/gatehouse.user.v1.User", Id: id}, grpc.WaitForReady(true))
		if err != nil || got.GetRecord().GetId() != id {
			t.Fatalf("after restart, get %s: %v %v", id, got, err)
		}
	}
	if info, _ := ca.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{}); info.GetServerVersion() != ia.ServerVersion {
		t.Fatalf("server version changed across restart: %d → %d", ia.ServerVersion, info.GetServerVersion())
	}
}
