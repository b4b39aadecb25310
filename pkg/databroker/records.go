// Package databroker is the client side of the databroker: typed helpers to
// put, get and delete protobuf messages as records, the record types
// gatehouse keeps, and a Syncer that keeps a local copy (a Handler) of a
// record type current through SyncLatest and Sync streams.
package databroker

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// The record types of the records gatehouse keeps: the Any type URLs of
// sessionv1.Session and userv1.User (TypeURLOf of each), spelled out here
// once for every service and test that names them.
const (
	SessionType = "type.googleapis.com/gatehouse.session.v1.Session"
	UserType    = "type.googleapis.com/gatehouse.user.v1.User"
)

// TypeURL returns the record type of messages like msg,
// "type.googleapis.com/<full name>". msg may be a nil pointer.
func TypeURL(msg proto.Message) string {
	return "type.googleapis.com/" + string(msg.ProtoReflect().Descriptor().FullName())
}

// TypeURLOf returns the record type of T.
func TypeURLOf[T proto.Message]() string {
	var zero T
	return TypeURL(zero)
}

// Put stores msg as the record (TypeURL(msg), id) and returns the stored
// record (with its version).
func Put(ctx context.Context, client databrokerv1.DataBrokerServiceClient, msg proto.Message, id string) (*databrokerv1.Record, error) {
	data, err := anypb.New(msg)
	if err != nil {
		return nil, fmt.Errorf("databroker: put %s/%s: %w", TypeURL(msg), id, err)
	}
	res, err := client.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{{Type: data.GetTypeUrl(), Id: id, Data: data}}})
	if err != nil {
		return nil, fmt.Errorf("databroker: put %s/%s: %w", data.GetTypeUrl(), id, err)
	}
	return res.GetRecords()[0], nil
}

// Get returns the message stored as record (TypeURLOf[T](), id). A missing
// record is a NOT_FOUND status error (status.Code(err) == codes.NotFound).
func Get[T proto.Message](ctx context.Context, client databrokerv1.DataBrokerServiceClient, id string) (T, error) {
	var zero T
	typ := TypeURL(zero)
	res, err := client.Get(ctx, &databrokerv1.GetRequest{Type: typ, Id: id})
	if err != nil {
		return zero, fmt.Errorf("databroker: get %s/%s: %w", typ, id, err)
	}
	return Unmarshal[T](res.GetRecord())
}

// Delete deletes the record (typeURL, id); deleting a missing record is
// not an error.
func Delete(ctx context.Context, client databrokerv1.DataBrokerServiceClient, typeURL, id string) error {
	_, err := client.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{{Type: typeURL, Id: id, DeletedAt: timestamppb.Now()}}})
	if err != nil {
		return fmt.Errorf("databroker: delete %s/%s: %w", typeURL, id, err)
	}
	return nil
}

// Unmarshal returns the data of a record as a T.
func Unmarshal[T proto.Message](r *databrokerv1.Record) (T, error) {
	var zero T
	msg := zero.ProtoReflect().New().Interface().(T)
	if err := r.GetData().UnmarshalTo(msg); err != nil {
		return zero, fmt.Errorf("databroker: record %s/%s: %w", r.GetType(), r.GetId(), err)
	}
	return msg, nil
}
