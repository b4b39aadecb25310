package extauthz_test

import (
	"context"
	"errors"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
)

type serverFunc func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)

func (f serverFunc) Check(ctx context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return f(ctx, r)
}

func httpReq(h *authv3.AttributeContext_HttpRequest) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request:           &authv3.AttributeContext_Request{Http: h},
		ContextExtensions: map[string]string{extauthz.ContextRouteID: "r1"},
	}}
}

func TestHeader(t *testing.T) {
	req := httpReq(&authv3.AttributeContext_HttpRequest{
		Headers: map[string]string{"cookie": "a=b"},
		HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: "X-Raw", RawValue: []byte("raw")},
			{Key: "accept", Value: "text/html"},
		}},
	})
	for name, want := range map[string]string{"cookie": "a=b", "x-raw": "raw", "accept": "text/html", "missing": ""} {
		if got := extauthz.Header(req, name); got != want {
			t.Errorf("Header(%q) = %q, want %q", name, got, want)
		}
	}
	if got := extauthz.Header(&authv3.CheckRequest{}, "cookie"); got != "" {
		t.Errorf("empty request: %q", got)
	}
	if got := extauthz.ContextExtension(req, extauthz.ContextRouteID); got != "r1" {
		t.Errorf("route id %q", got)
	}
}

func TestResponses(t *testing.T) {
	ok := extauthz.OK([]*corev3.HeaderValueOption{extauthz.NewHeader("x-a", "1")}, []string{"x-b"})
	if !extauthz.Allowed(ok) || extauthz.ResponseHeader(ok, "X-A") != "1" || ok.GetOkResponse().GetHeadersToRemove()[0] != "x-b" {
		t.Errorf("OK: %v", ok)
	}
	if a := ok.GetOkResponse().GetHeaders()[0].GetAppendAction(); a != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
		t.Errorf("append action %v", a)
	}
	for _, tt := range []struct {
		status int
		code   codes.Code
	}{{302, codes.Unauthenticated}, {401, codes.Unauthenticated}, {403, codes.PermissionDenied}, {404, codes.PermissionDenied}} {
		d := extauthz.Denied(tt.status, []*corev3.HeaderValueOption{extauthz.NewHeader("location", "/x")}, "body")
		if extauthz.Allowed(d) || extauthz.DeniedStatus(d) != tt.status || codes.Code(d.GetStatus().GetCode()) != tt.code {
			t.Errorf("Denied(%d): %v", tt.status, d)
		}
		if extauthz.ResponseHeader(d, "Location") != "/x" || d.GetDeniedResponse().GetBody() != "body" {
			t.Errorf("Denied(%d) headers/body: %v", tt.status, d)
		}
	}
	if got := extauthz.DeniedStatus(&authv3.CheckResponse{}); got != 403 {
		t.Errorf("default denied status %d", got)
	}
}

func TestLocalClient(t *testing.T) {
	want := extauthz.OK(nil, nil)
	var got *authv3.CheckRequest
	c := extauthz.LocalClient{Server: serverFunc(func(_ context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		got = r
		return want, nil
	})}
	req := httpReq(&authv3.AttributeContext_HttpRequest{Host: "a"})
	resp, err := c.Check(context.Background(), req)
	if err != nil || resp != want || got != req {
		t.Fatalf("Check: %v %v", resp, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Check(ctx, req); status.Code(err) != codes.Canceled {
		t.Errorf("canceled ctx: %v", err)
	}

	plain := extauthz.LocalClient{Server: serverFunc(func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return nil, errors.New("boom")
	})}
	if _, err := plain.Check(context.Background(), req); status.Code(err) != codes.Unknown {
		t.Errorf("plain error: %v", err)
	}
	nothing := extauthz.LocalClient{Server: serverFunc(func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return nil, nil
	})}
	if _, err := nothing.Check(context.Background(), req); status.Code(err) != codes.Internal {
		t.Errorf("nil response: %v", err)
	}
}

// NewLocalClient calls the server through the interceptor, as the gRPC
// server would call the Check method.
func TestLocalClientInterceptor(t *testing.T) {
	want := extauthz.OK(nil, nil)
	server := serverFunc(func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) { return want, nil })
	var method string
	c := extauthz.NewLocalClient(server, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		method = info.FullMethod
		return h(ctx, req)
	})
	if resp, err := c.Check(context.Background(), httpReq(&authv3.AttributeContext_HttpRequest{Host: "a"})); err != nil || resp != want {
		t.Fatalf("Check: %v %v", resp, err)
	}
	if method != "/envoy.service.auth.v3.Authorization/Check" {
		t.Errorf("interceptor saw method %q", method)
	}

	refuse := extauthz.NewLocalClient(server, func(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) {
		return nil, status.Error(codes.Internal, "internal error")
	})
	if _, err := refuse.Check(context.Background(), httpReq(&authv3.AttributeContext_HttpRequest{})); status.Code(err) != codes.Internal {
		t.Errorf("interceptor's error: %v", err)
	}
}
