package databroker_test

import (
	"context"
	"fmt"

	"github.com/gatehouse/gatehouse/pkg/databroker"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
)

// A consumer keeps every user in memory and reads them without a round
// trip to the databroker.
func ExampleSyncer() {
	var client databrokerv1.DataBrokerServiceClient // from a grpc.ClientConn
	var handler databroker.Handler                  // Reset and Update a local copy
	ctx := context.Background()

	syncer := databroker.NewSyncer(client, databroker.UserType, handler, databroker.SyncerOptions{})
	go syncer.Run(ctx) //nolint:errcheck // Run returns nil when ctx ends

	if err := syncer.WaitSynced(ctx); err != nil { // readiness
		return
	}
	fmt.Println(syncer.HasSynced())
}

// Writing and reading one typed record.
func ExamplePut() {
	var client databrokerv1.DataBrokerServiceClient
	ctx := context.Background()

	if _, err := databroker.Put(ctx, client, &userv1.User{Id: "u1", Email: "u1@example.com"}, "u1"); err != nil {
		return
	}
	u, err := databroker.Get[*userv1.User](ctx, client, "u1")
	fmt.Println(u.GetEmail(), err)
}
