package grpcutil

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto" // registered first: the fallback
	"google.golang.org/grpc/mem"
)

// init replaces gRPC's "proto" codec, for every connection and server of
// the process, by one that marshals the messages vtprotobuf generated
// code for (the ext_authz CheckRequest and CheckResponse of every Check)
// with that code, and everything else as before. The bytes on the wire
// are protobuf either way: nothing a peer sees changes.
func init() {
	encoding.RegisterCodecV2(vtCodec{fallback: encoding.GetCodecV2(protoenc.Name)})
}

// vtMarshaler is what protoc-gen-go-vtproto generates for a message with
// its size and marshal_strict features (go-control-plane's envoy types,
// compiled with the vtprotobuf build tag).
type vtMarshaler interface {
	SizeVT() int
	MarshalToSizedBufferVTStrict([]byte) (int, error)
}

// vtCodec marshals vtMarshalers into a buffer of gRPC's pool. The
// reflection-driven proto.Marshal walks a map field (a CheckRequest's
// headers) through reflect and boxes every key and value twice (Size,
// then Marshal), and allocates a fresh slice for a message under 1 KiB;
// the generated code does neither. Unmarshalling stays proto's:
// go-control-plane generates no UnmarshalVT.
type vtCodec struct{ fallback encoding.CodecV2 }

func (c vtCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMarshaler)
	if !ok {
		return c.fallback.Marshal(v)
	}
	size := m.SizeVT()
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	// The generated code writes backwards from the end of the slice it is
	// given, so it must be exactly size long.
	n, err := m.MarshalToSizedBufferVTStrict((*buf)[:size])
	if err == nil && n != size {
		err = fmt.Errorf("wrote %d bytes of %d (was the message changed while it was sent?)", n, size)
	}
	if err != nil {
		pool.Put(buf)
		return nil, fmt.Errorf("grpc: marshal %T: %w", v, err)
	}
	*buf = (*buf)[:size]
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (c vtCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.fallback.Unmarshal(data, v)
}

// Name is gRPC's default codec's, so that this one replaces it.
func (vtCodec) Name() string { return protoenc.Name }
