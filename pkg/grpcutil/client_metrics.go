package grpcutil

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
)

// The client's interceptors count what go-grpc-middleware's Prometheus
// provider counts, in the same series: it sat on every Check the proxy
// sends, where it resolved four label sets and allocated its reporter per
// call.

// unaryClient records a unary call: started, its request sent (before the
// call, as the provider counts it), its response received when it
// succeeded, and handled with its code.
func (m *rpcMetrics) unaryClient(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	mm := m.method(method, typeUnary)
	mm.started.Inc()
	mm.sentCounter().Inc()
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err == nil {
		mm.receivedCounter().Inc()
	}
	mm.handledCounter(errorCode(err)).Inc()
	return err
}

// streamClient records a streaming call: started, each message sent and
// received, and handled with its code when the stream ends (io.EOF is OK)
// or could not be opened.
func (m *rpcMetrics) streamClient(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	typ := typeBidiStream
	switch {
	case desc.ClientStreams && !desc.ServerStreams:
		typ = typeClientStream
	case !desc.ClientStreams && desc.ServerStreams:
		typ = typeServerStream
	}
	mm := m.method(method, typ)
	mm.started.Inc()
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		mm.handledCounter(errorCode(err)).Inc()
		return nil, err
	}
	return &countedClientStream{ClientStream: cs, mm: mm}, nil
}

// countedClientStream counts the messages of a client stream and its end.
type countedClientStream struct {
	grpc.ClientStream
	mm *methodMetrics
}

func (s *countedClientStream) SendMsg(msg any) error {
	err := s.ClientStream.SendMsg(msg)
	if err == nil {
		s.mm.sentCounter().Inc()
	}
	return err
}

func (s *countedClientStream) RecvMsg(msg any) error {
	err := s.ClientStream.RecvMsg(msg)
	if err == nil {
		s.mm.receivedCounter().Inc()
		return nil
	}
	end := err
	if errors.Is(err, io.EOF) {
		end = nil // the server ended the stream with OK
	}
	s.mm.handledCounter(errorCode(end)).Inc()
	return err
}
