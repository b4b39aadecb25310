package databroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
)

// Get implements DataBrokerServiceServer.
func (s *Service) Get(ctx context.Context, req *databrokerv1.GetRequest) (*databrokerv1.GetResponse, error) {
	if req.GetType() == "" || req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "type and id are required")
	}
	r, err := s.backend.Get(ctx, req.GetType(), req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &databrokerv1.GetResponse{Record: r}, nil
}

// Put implements DataBrokerServiceServer.
func (s *Service) Put(ctx context.Context, req *databrokerv1.PutRequest) (*databrokerv1.PutResponse, error) {
	sv, recs, err := s.backend.Put(ctx, req.GetRecords())
	if err != nil {
		return nil, toStatus(err)
	}
	return &databrokerv1.PutResponse{ServerVersion: sv, Records: recs}, nil
}

// Patch implements DataBrokerServiceServer.
func (s *Service) Patch(ctx context.Context, req *databrokerv1.PatchRequest) (*databrokerv1.PatchResponse, error) {
	if len(req.GetFieldMask().GetPaths()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "field_mask needs at least one path")
	}
	sv, recs, err := s.backend.Patch(ctx, req.GetRecords(), req.GetFieldMask().GetPaths())
	if err != nil {
		return nil, toStatus(err)
	}
	return &databrokerv1.PatchResponse{ServerVersion: sv, Records: recs}, nil
}

// Query implements DataBrokerServiceServer.
func (s *Service) Query(ctx context.Context, req *databrokerv1.QueryRequest) (*databrokerv1.QueryResponse, error) {
	if req.GetType() == "" {
		return nil, status.Error(codes.InvalidArgument, "type is required")
	}
	if req.GetOffset() < 0 || req.GetLimit() < 0 {
		return nil, status.Error(codes.InvalidArgument, "offset and limit must not be negative")
	}
	filter, err := filterFromStruct(req.GetFilter())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	res, err := s.backend.Query(ctx, storage.Query{
		Type: req.GetType(), Text: req.GetQuery(), Filter: filter,
		Offset: int(req.GetOffset()), Limit: int(req.GetLimit()),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &databrokerv1.QueryResponse{
		Records: res.Records, TotalCount: int64(res.TotalCount),
		ServerVersion: res.ServerVersion, RecordVersion: res.RecordVersion,
	}, nil
}

// filterFromStruct turns {"field": value or [values]} into field → values.
func filterFromStruct(st *structpb.Struct) (map[string][]string, error) {
	if len(st.GetFields()) == 0 {
		return nil, nil
	}
	out := make(map[string][]string, len(st.GetFields()))
	for k, v := range st.GetFields() {
		if l := v.GetListValue(); l != nil {
			for _, e := range l.GetValues() {
				s, err := scalar(k, e)
				if err != nil {
					return nil, err
				}
				out[k] = append(out[k], s)
			}
			continue
		}
		s, err := scalar(k, v)
		if err != nil {
			return nil, err
		}
		out[k] = []string{s}
	}
	return out, nil
}

func scalar(k string, v *structpb.Value) (string, error) {
	switch x := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return x.StringValue, nil
	case *structpb.Value_NumberValue:
		return strconv.FormatFloat(x.NumberValue, 'f', -1, 64), nil
	case *structpb.Value_BoolValue:
		return strconv.FormatBool(x.BoolValue), nil
	}
	return "", fmt.Errorf("filter field %q: want a string, number, bool or a list of them", k)
}

// ListTypes implements DataBrokerServiceServer.
func (s *Service) ListTypes(ctx context.Context, _ *databrokerv1.ListTypesRequest) (*databrokerv1.ListTypesResponse, error) {
	types, err := s.backend.ListTypes(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &databrokerv1.ListTypesResponse{Types: types}, nil
}

// ServerInfo implements DataBrokerServiceServer.
func (s *Service) ServerInfo(ctx context.Context, _ *databrokerv1.ServerInfoRequest) (*databrokerv1.ServerInfoResponse, error) {
	vs, err := s.backend.Versions(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &databrokerv1.ServerInfoResponse{ServerVersion: vs.Server, EarliestRecordVersion: vs.Earliest, LatestRecordVersion: vs.Latest}, nil
}

// Sync implements DataBrokerServiceServer. While the storage is
// unreachable the stream stays open and retries with backoff, so a client
// keeping up resumes where it was once the storage is back.
func (s *Service) Sync(req *databrokerv1.SyncRequest, stream databrokerv1.DataBrokerService_SyncServer) error {
	ctx := stream.Context()
	after := req.GetRecordVersion()
	backoff := time.Duration(0)
	for {
		changed := s.backend.Changed() // before reading, so no write is missed
		batch, err := s.backend.Changes(ctx, req.GetServerVersion(), req.GetType(), after, syncBatch)
		if errors.Is(err, storage.ErrUnavailable) {
			backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
			select {
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			case <-time.After(backoff):
				continue
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return status.FromContextError(ctx.Err()).Err()
			}
			return toStatus(err)
		}
		backoff = 0
		for _, r := range batch.Records {
			if err := stream.Send(&databrokerv1.SyncResponse{Record: r}); err != nil {
				return err
			}
		}
		after = batch.Through
		if batch.More {
			continue
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-changed:
		}
	}
}

// SyncLatest implements DataBrokerServiceServer.
func (s *Service) SyncLatest(req *databrokerv1.SyncLatestRequest, stream databrokerv1.DataBrokerService_SyncLatestServer) error {
	recs, vs, err := s.backend.Latest(stream.Context(), req.GetType())
	if err != nil {
		return toStatus(err)
	}
	for _, r := range recs {
		if err := stream.Send(&databrokerv1.SyncLatestResponse{Response: &databrokerv1.SyncLatestResponse_Record{Record: r}}); err != nil {
			return err
		}
	}
	return stream.Send(&databrokerv1.SyncLatestResponse{Response: &databrokerv1.SyncLatestResponse_Versions{
		Versions: &databrokerv1.Versions{ServerVersion: vs.Server, LatestRecordVersion: vs.Latest},
	}})
}

func leaseDuration(name string, d *durationpb.Duration) (time.Duration, error) {
	if name == "" {
		return 0, status.Error(codes.InvalidArgument, "lease name is required")
	}
	if d == nil || d.AsDuration() <= 0 {
		return 0, status.Error(codes.InvalidArgument, "a positive lease duration is required")
	}
	return d.AsDuration(), nil
}

// AcquireLease implements DataBrokerServiceServer.
func (s *Service) AcquireLease(ctx context.Context, req *databrokerv1.AcquireLeaseRequest) (*databrokerv1.AcquireLeaseResponse, error) {
	ttl, err := leaseDuration(req.GetName(), req.GetDuration())
	if err != nil {
		return nil, err
	}
	id := req.GetId()
	if id == "" {
		id = newLeaseID()
	}
	if err := s.backend.AcquireLease(ctx, req.GetName(), id, ttl); err != nil {
		return nil, toStatus(err)
	}
	return &databrokerv1.AcquireLeaseResponse{Id: id}, nil
}

// RenewLease implements DataBrokerServiceServer.
func (s *Service) RenewLease(ctx context.Context, req *databrokerv1.RenewLeaseRequest) (*databrokerv1.RenewLeaseResponse, error) {
	ttl, err := leaseDuration(req.GetName(), req.GetDuration())
	if err != nil {
		return nil, err
	}
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "lease id is required")
	}
	if err := s.backend.RenewLease(ctx, req.GetName(), req.GetId(), ttl); err != nil {
		return nil, toStatus(err)
	}
	return &databrokerv1.RenewLeaseResponse{}, nil
}

// ReleaseLease implements DataBrokerServiceServer.
func (s *Service) ReleaseLease(ctx context.Context, req *databrokerv1.ReleaseLeaseRequest) (*databrokerv1.ReleaseLeaseResponse, error) {
	if req.GetName() == "" || req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "lease name and id are required")
	}
	if err := s.backend.ReleaseLease(ctx, req.GetName(), req.GetId()); err != nil {
		return nil, toStatus(err)
	}
	return &databrokerv1.ReleaseLeaseResponse{}, nil
}

// SetOptions implements DataBrokerServiceServer.
func (s *Service) SetOptions(ctx context.Context, req *databrokerv1.SetOptionsRequest) (*databrokerv1.SetOptionsResponse, error) {
	if req.GetType() == "" {
		return nil, status.Error(codes.InvalidArgument, "type is required")
	}
	opts := req.GetOptions()
	if opts == nil {
		opts = &databrokerv1.Options{}
	}
	if opts.GetTtl() != nil && opts.GetTtl().AsDuration() < 0 {
		return nil, status.Error(codes.InvalidArgument, "ttl must not be negative")
	}
	if err := s.backend.SetOptions(ctx, req.GetType(), opts); err != nil {
		return nil, toStatus(err)
	}
	stored, err := s.backend.GetOptions(ctx, req.GetType())
	if err != nil {
		return nil, toStatus(err)
	}
	return &databrokerv1.SetOptionsResponse{Options: stored}, nil
}

// GetOptions implements DataBrokerServiceServer.
func (s *Service) GetOptions(ctx context.Context, req *databrokerv1.GetOptionsRequest) (*databrokerv1.GetOptionsResponse, error) {
	if req.GetType() == "" {
		return nil, status.Error(codes.InvalidArgument, "type is required")
	}
	opts, err := s.backend.GetOptions(ctx, req.GetType())
	if err != nil {
		return nil, toStatus(err)
	}
	return &databrokerv1.GetOptionsResponse{Options: opts}, nil
}
