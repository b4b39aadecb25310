//go:build vtprotobuf

package grpcutil

import (
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// TestCodecMarshalsCheckWithVTProto guards the fast path of every Check:
// built with the vtprotobuf tag (as make and the Dockerfile build),
// go-control-plane's CheckRequest and CheckResponse must carry the
// generated methods vtCodec uses, or they would silently go through
// proto.Marshal again.
func TestCodecMarshalsCheckWithVTProto(t *testing.T) {
	for _, m := range []any{&authv3.CheckRequest{}, &authv3.CheckResponse{}} {
		if _, ok := m.(vtMarshaler); !ok {
			t.Errorf("%T has no SizeVT/MarshalToSizedBufferVTStrict: vtCodec marshals it with proto", m)
		}
	}
}
