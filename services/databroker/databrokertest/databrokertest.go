// Package databrokertest runs a real databroker service in-process for
// tests of the code around it (authorize's Sync, authenticate's session
// writes, pkg/databroker's cache): the service a deployment runs, on a
// loopback gRPC server with service-token authentication, health and
// reflection, so a test exercises the same calls a split deployment makes.
//
// It lives beside services/databroker, as httptest beside net/http: a test
// helper may import a service; services themselves never import another.
package databrokertest

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/gatehouse/gatehouse/pkg/grpcutil"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker"
)

// Server is a running databroker owned by one test. It is stopped when
// the test ends. Methods are safe for concurrent use.
type Server struct {
	t    testing.TB
	opts databroker.Options
	key  []byte
	addr string
	conn *grpc.ClientConn

	mu      sync.Mutex
	svc     *databroker.Service
	srv     *grpcutil.Server
	cancel  context.CancelFunc
	runDone chan error
}

// Option configures Start.
type Option func(*Server)

// WithOptions sets the service's options (storage, intervals...); the
// default is a memory store. A nil Logger discards the service's logs.
func WithOptions(o databroker.Options) Option {
	return func(s *Server) { s.opts = o }
}

// WithSharedKey makes the server accept service tokens signed with key
// (a config's SharedKey), for a test whose other services read their key
// from a config; the default is a random key.
func WithSharedKey(key []byte) Option {
	return func(s *Server) { s.key = key }
}

// WithAddr makes the server listen on addr (e.g. testutil.FreeAddr) rather
// than on a port the kernel picks, for a test that must write the address
// into a config before the server starts.
func WithAddr(addr string) Option {
	return func(s *Server) { s.addr = addr }
}

// Start starts a databroker service, its background Run and its gRPC
// server on loopback, and a client connection to it that carries service
// tokens. It fails the test if any of them cannot start.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, addr: "127.0.0.1:0"}
	for _, o := range opts {
		o(s)
	}
	if s.key == nil {
		s.key = make([]byte, 32)
		_, _ = rand.Read(s.key)
	}
	if s.opts.Logger == nil {
		s.opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatalf("databrokertest: %v", err)
	}
	s.addr = lis.Addr().String()
	t.Cleanup(s.Stop)
	s.serve(lis)

	conn, err := grpcutil.Dial(grpcutil.ClientOptions{
		Targets:   []*url.URL{{Scheme: "http", Host: s.addr}},
		SharedKey: s.key,
		Insecure:  true,
	})
	if err != nil {
		t.Fatalf("databrokertest: dial %s: %v", s.addr, err)
	}
	s.conn = conn
	t.Cleanup(func() { conn.Close() })
	return s
}

// serve starts a fresh service on lis.
func (s *Server) serve(lis net.Listener) {
	s.t.Helper()
	svc, err := databroker.New(context.Background(), s.opts)
	if err != nil {
		lis.Close()
		s.t.Fatalf("databrokertest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- svc.Run(ctx) }()
	srv := grpcutil.NewServer(grpcutil.ServerOptions{SharedKey: s.key, Logger: s.opts.Logger})
	svc.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	s.mu.Lock()
	s.svc, s.srv, s.cancel, s.runDone = svc, srv, cancel, runDone
	s.mu.Unlock()
}

// Addr returns the server's "127.0.0.1:PORT"; it stays the same across
// Restart.
func (s *Server) Addr() string { return s.addr }

// URL returns the server's address as a databroker_service_url.
func (s *Server) URL() string { return "http://" + s.addr }

// SharedKey returns the key the server's service tokens are signed with.
func (s *Server) SharedKey() []byte { return s.key }

// Conn returns a connection to the server that attaches a service token
// to every call. It survives Restart (it reconnects, as any client does).
func (s *Server) Conn() *grpc.ClientConn { return s.conn }

// Client returns a DataBrokerService client over Conn.
func (s *Server) Client() databrokerv1.DataBrokerServiceClient {
	return databrokerv1.NewDataBrokerServiceClient(s.conn)
}

// Service returns the running service (the one started last).
func (s *Server) Service() *databroker.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svc
}

// Stop stops the server and its service and closes the storage; it does
// nothing when the server is stopped. It fails the test when the
// service's Run ends with an error.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	s.srv.Stop()
	s.cancel()
	if err := <-s.runDone; err != nil {
		s.t.Errorf("databrokertest: Run: %v", err)
	}
	_ = s.svc.Close()
	s.srv, s.svc = nil, nil
}

// Restart stops the server and starts a fresh one on the same address: an
// empty memory store with a new server version, as after a databroker
// restart. (A Redis store keeps its records.) It waits, bounded, until the
// old listener's port can be taken again.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var lis net.Listener
	testutil.WaitFor(s.t, 10*time.Second, "to listen again on "+s.addr, func() error {
		var err error
		lis, err = net.Listen("tcp", s.addr)
		return err
	})
	s.serve(lis)
}
