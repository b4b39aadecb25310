package databrokertest_test

import (
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker/databrokertest"
)

func TestStartServesWithServiceTokens(t *testing.T) {
	s := databrokertest.Start(t)
	ctx := t.Context()
	if _, err := s.Client().ServerInfo(ctx, &databrokerv1.ServerInfoRequest{}); err != nil {
		t.Fatalf("ServerInfo with a service token: %v", err)
	}
	// A caller without the token is refused, as by a deployed databroker.
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = databrokerv1.NewDataBrokerServiceClient(conn).ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("without a token: %v, want Unauthenticated", err)
	}
}

func TestRestartIsAnEmptyStoreOnTheSameAddress(t *testing.T) {
	addr := testutil.FreeAddr(t)
	s := databrokertest.Start(t, databrokertest.WithAddr(addr))
	ctx := t.Context()
	before, err := s.Client().ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("address %s after Restart, want %s", s.Addr(), addr)
	}
	var after *databrokerv1.ServerInfoResponse
	testutil.WaitFor(t, 10*time.Second, "ServerInfo from the restarted databroker", func() error {
		after, err = s.Client().ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
		return err
	})
	if after.GetServerVersion() == before.GetServerVersion() {
		t.Fatal("same server version after Restart: the store was not replaced")
	}
}
