// Package extauthz holds the small pieces of Envoy's ext_authz v3 API
// (envoy.service.auth.v3) that gatehouse's proxy and authorize services
// share: the context extension names, reading headers from a CheckRequest,
// building OK and denied CheckResponses, and LocalClient, the in-process
// AuthorizationClient that all-in-one mode hands the proxy in place of a
// gRPC connection.
package extauthz

import (
	"context"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Context extension keys the proxy sets on every CheckRequest
// (attributes.context_extensions).
const (
	// ContextRouteID names the matched route (config.Route.ID).
	ContextRouteID = "route_id"
	// ContextInternal is "true" for the proxy's own /.pomerium/ pages:
	// authorize then skips the route policy and only needs a session.
	ContextInternal = "internal"
)

// LocalClient is an authv3.AuthorizationClient that calls an
// AuthorizationServer in the same process: the same request, the same
// checks and the same answer as over gRPC, without the network hop and
// without serialization. Built with NewLocalClient, it runs the gRPC
// server's interceptors (panic recovery, metrics: see
// grpcutil.Server.LocalInterceptor) around the call, as a call over the
// network would meet them.
//
// Responses may share immutable parts (header values, status) with other
// responses and with the server's caches: callers must treat a
// CheckResponse as read-only, as they would one just unmarshalled.
//
// LocalClient is safe for concurrent use when Server is.
type LocalClient struct {
	Server authv3.AuthorizationServer

	// Set by NewLocalClient, once: the interceptor, the handler it calls
	// and the call's info. Building them per call would cost allocations.
	interceptor grpc.UnaryServerInterceptor
	handler     grpc.UnaryHandler
	info        *grpc.UnaryServerInfo
}

var _ authv3.AuthorizationClient = LocalClient{}

// NewLocalClient returns a LocalClient that calls server through
// interceptor (nil: directly), as the gRPC server would for
// envoy.service.auth.v3.Authorization/Check.
func NewLocalClient(server authv3.AuthorizationServer, interceptor grpc.UnaryServerInterceptor) *LocalClient {
	c := &LocalClient{Server: server, interceptor: interceptor}
	if interceptor != nil {
		c.info = &grpc.UnaryServerInfo{Server: server, FullMethod: authv3.Authorization_Check_FullMethodName}
		c.handler = func(ctx context.Context, req any) (any, error) {
			return server.Check(ctx, req.(*authv3.CheckRequest))
		}
	}
	return c
}

// Check calls Server.Check, through the interceptor when there is one.
// Call options are ignored. A context that is already done fails as a
// gRPC client call would (Canceled or DeadlineExceeded), and so does a
// server that answers with neither a response nor an error (Internal), so
// that callers need only one error path.
func (c LocalClient) Check(ctx context.Context, in *authv3.CheckRequest, _ ...grpc.CallOption) (*authv3.CheckResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	var resp *authv3.CheckResponse
	var err error
	if c.interceptor != nil {
		var out any
		out, err = c.interceptor(ctx, in, c.info, c.handler)
		resp, _ = out.(*authv3.CheckResponse)
	} else {
		resp, err = c.Server.Check(ctx, in)
	}
	if err != nil {
		if _, ok := status.FromError(err); !ok {
			return nil, status.Error(codes.Unknown, err.Error())
		}
		return nil, err
	}
	if resp == nil {
		return nil, status.Error(codes.Internal, "authorize returned no response")
	}
	return resp, nil
}

// HTTPRequest returns the request's attributes.request.http, or nil.
func HTTPRequest(req *authv3.CheckRequest) *authv3.AttributeContext_HttpRequest {
	return req.GetAttributes().GetRequest().GetHttp()
}

// Header returns the value of the request header name (lower-case, as Envoy
// and gatehouse's proxy send them) from a CheckRequest, looking in
// attributes.request.http.headers and then in header_map (which Envoy fills
// instead when encode_raw_headers is on). It returns "" when the header is
// absent. It does not allocate.
func Header(req *authv3.CheckRequest, name string) string {
	h := HTTPRequest(req)
	if h == nil {
		return ""
	}
	if v, ok := h.Headers[name]; ok {
		return v
	}
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		if strings.EqualFold(hv.GetKey(), name) {
			if v := hv.GetValue(); v != "" {
				return v
			}
			return string(hv.GetRawValue())
		}
	}
	return ""
}

// ContextExtension returns attributes.context_extensions[key], or "".
func ContextExtension(req *authv3.CheckRequest, key string) string {
	return req.GetAttributes().GetContextExtensions()[key]
}

// NewHeader returns a header to set, overwriting any value the request
// already has (OVERWRITE_IF_EXISTS_OR_ADD), as gatehouse sets every
// identity and route header.
func NewHeader(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// StatusOK is the rpc status of an allowed request. It is shared: do not
// modify it.
var StatusOK = &rpcstatus.Status{Code: int32(codes.OK)}

// OK returns an allowing response that sets headers on the upstream request
// and removes headersToRemove from it. The slices are used as given, not
// copied.
func OK(headers []*corev3.HeaderValueOption, headersToRemove []string) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: StatusOK,
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:         headers,
			HeadersToRemove: headersToRemove,
		}},
	}
}

// Denied returns a denying response that the proxy (or Envoy) sends to the
// client as is: HTTP status httpStatus with headers and body. The rpc status
// is Unauthenticated for 302 and 401 (sign-in could help) and
// PermissionDenied otherwise.
func Denied(httpStatus int, headers []*corev3.HeaderValueOption, body string) *authv3.CheckResponse {
	code := codes.PermissionDenied
	if httpStatus == http.StatusFound || httpStatus == http.StatusUnauthorized {
		code = codes.Unauthenticated
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: http.StatusText(httpStatus)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(httpStatus)},
			Headers: headers,
			Body:    body,
		}},
	}
}

// Allowed reports whether resp allows the request (rpc status OK).
func Allowed(resp *authv3.CheckResponse) bool {
	return resp.GetStatus().GetCode() == int32(codes.OK)
}

// DeniedStatus returns the HTTP status of a denied response: the one it
// carries, or 403 when it carries none (as Envoy does).
func DeniedStatus(resp *authv3.CheckResponse) int {
	if c := resp.GetDeniedResponse().GetStatus().GetCode(); c != 0 {
		return int(c)
	}
	return http.StatusForbidden
}

// ResponseHeader returns the value of the header key (compared without
// regard to case) among the headers of an OK or denied response, or "".
func ResponseHeader(resp *authv3.CheckResponse, key string) string {
	hs := resp.GetOkResponse().GetHeaders()
	if d := resp.GetDeniedResponse(); d != nil {
		hs = d.GetHeaders()
	}
	for _, h := range hs {
		if strings.EqualFold(h.GetHeader().GetKey(), key) {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}
