package grpcutil

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// codecCheckRequest is a CheckRequest as the proxy sends it, with every
// kind of field it fills: nested messages, strings, maps.
func codecCheckRequest() *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: "192.0.2.10"},
			}},
			Certificate: "-----BEGIN%20CERTIFICATE-----",
		},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "0123456789abcdef0123456789abcdef", Method: "GET", Host: "grafana.localhost.pomerium.io",
			Path: "/d/abc?orgId=1", Scheme: "https", Protocol: "HTTP/1.1",
			Headers: map[string]string{
				"cookie":       "other=1; _pomerium=handle; x=y",
				"accept":       "text/html,*/*;q=0.8",
				"user-agent":   "Mozilla/5.0",
				"x-request-id": "0123456789abcdef0123456789abcdef",
			},
		}},
		ContextExtensions: map[string]string{"route_id": "grafana", "internal": "true"},
	}}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		msg  proto.Message
	}{
		{"check request", codecCheckRequest()},
		{"empty check request", &authv3.CheckRequest{}},
		{"ok response", &authv3.CheckResponse{
			Status: &rpcstatus.Status{},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers: []*corev3.HeaderValueOption{{
					Header:       &corev3.HeaderValue{Key: "x-pomerium-jwt-assertion", Value: "a.b.c"},
					AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
				}, {
					Header: &corev3.HeaderValue{Key: "x-pomerium-claim-groups", Value: "admins,staff"},
					Append: wrapperspb.Bool(false),
				}},
				HeadersToRemove: []string{"x-pomerium-authorization"},
			}},
			DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{"user": structpb.NewStringValue("alice")}},
		}},
		{"denied response", &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: 7, Message: "denied"},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status:  &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
				Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "content-type", Value: "text/html"}}},
				Body:    "<h1>403</h1>",
			}},
		}},
		{"no vtproto: health", &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}},
		{"no vtproto: struct", &structpb.Struct{Fields: map[string]*structpb.Value{"a": structpb.NewNumberValue(1)}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			codec := encoding.GetCodecV2(protoenc.Name)
			data, err := codec.Marshal(c.msg)
			if err != nil {
				t.Fatal(err)
			}
			wire := data.Materialize()
			data.Free()
			// What any protobuf peer (Envoy, grpcurl) reads: proto's own parser.
			got := c.msg.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(wire, got); err != nil {
				t.Fatalf("proto.Unmarshal: %v", err)
			}
			if !proto.Equal(got, c.msg) {
				t.Fatalf("round trip changed the message:\n got %v\nwant %v", got, c.msg)
			}
			// And the codec's own Unmarshal, as the other end of a call.
			got2 := c.msg.ProtoReflect().New().Interface()
			if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, got2); err != nil {
				t.Fatalf("codec Unmarshal: %v", err)
			}
			if !proto.Equal(got2, c.msg) {
				t.Fatalf("codec round trip changed the message:\n got %v\nwant %v", got2, c.msg)
			}
		})
	}
}

func TestCodecReplacesProto(t *testing.T) {
	if _, ok := encoding.GetCodecV2(protoenc.Name).(vtCodec); !ok {
		t.Fatalf("the %q codec is %T, not grpcutil's", protoenc.Name, encoding.GetCodecV2(protoenc.Name))
	}
}

func TestCodecRefusesNonProto(t *testing.T) {
	if _, err := encoding.GetCodecV2(protoenc.Name).Marshal("not a message"); err == nil {
		t.Fatal("marshalled a string")
	}
}

// BenchmarkCodecMarshal is the marshal of the proxy's CheckRequest by
// gRPC's proto codec and by the vtproto one (the same as proto without
// the vtprotobuf build tag).
func BenchmarkCodecMarshal(b *testing.B) {
	req := codecCheckRequest()
	for _, c := range []struct {
		name  string
		codec encoding.CodecV2
	}{
		{"proto", encoding.GetCodecV2(protoenc.Name).(vtCodec).fallback},
		{"vtproto", encoding.GetCodecV2(protoenc.Name)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				data, err := c.codec.Marshal(req)
				if err != nil {
					b.Fatal(err)
				}
				data.Free()
			}
		})
	}
}
