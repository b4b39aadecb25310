package authorize

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Backoff bounds between failed attempts to reach the databroker.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// syncer keeps a store current from the databroker: SyncLatest fills it,
// then Sync streams every change after that; when the databroker answers
// Aborted (wiped, or our version left its change log) it starts over with
// SyncLatest. While the databroker is unreachable the store keeps what it
// has, so Checks go on.
type syncer struct {
	client databrokerv1.DataBrokerServiceClient
	store  *store
	logger *slog.Logger
}

// run syncs until ctx ends.
func (y *syncer) run(ctx context.Context) error {
	backoff := minBackoff
	needLatest := true
	for {
		if ctx.Err() != nil {
			return nil
		}
		var err error
		if needLatest {
			err = y.syncLatest(ctx)
			if err == nil {
				needLatest = false
				backoff = minBackoff
			}
		}
		if err == nil {
			var progressed bool
			progressed, err = y.syncChanges(ctx)
			if progressed {
				backoff = minBackoff
			}
			if status.Code(err) == codes.Aborted {
				y.logger.Info("databroker sync restarting from the latest records", "error", err.Error())
				needLatest = true
				continue
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		y.logger.Warn("databroker sync failed; retrying", "error", err.Error(), "backoff", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// syncLatest replaces the store's content with every live record.
func (y *syncer) syncLatest(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := y.client.SyncLatest(ctx, &databrokerv1.SyncLatestRequest{})
	if err != nil {
		return err
	}
	var records []*databrokerv1.Record
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("SyncLatest ended without versions")
			}
			return err
		}
		switch r := msg.GetResponse().(type) {
		case *databrokerv1.SyncLatestResponse_Record:
			if t := r.Record.GetType(); t == SessionType || t == UserType {
				records = append(records, r.Record)
			}
		case *databrokerv1.SyncLatestResponse_Versions:
			y.store.reset(records, r.Versions)
			y.logger.Debug("databroker sync: loaded latest records", "records", len(records),
				"record_version", r.Versions.GetLatestRecordVersion())
			return nil
		}
	}
}

// syncChanges streams changes after the store's version until the stream
// fails. progressed reports whether any change arrived.
func (y *syncer) syncChanges(ctx context.Context) (progressed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	server, version := y.store.versions()
	stream, err := y.client.Sync(ctx, &databrokerv1.SyncRequest{ServerVersion: server, RecordVersion: version})
	if err != nil {
		return false, err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("Sync stream ended")
			}
			return progressed, err
		}
		progressed = true
		y.store.apply(msg.GetRecord())
	}
}
