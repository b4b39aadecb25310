package extauthz_test

import (
	"context"
	"fmt"
	"net/http"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
)

// An authorization server that lets only GET through, called in process
// through LocalClient as all-in-one gatehouse calls authorize.
func ExampleLocalClient() {
	server := serverFunc(func(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		if extauthz.HTTPRequest(req).GetMethod() != http.MethodGet {
			return extauthz.Denied(http.StatusForbidden, nil, "forbidden\n"), nil
		}
		return extauthz.OK(nil, nil), nil
	})
	var client authv3.AuthorizationClient = extauthz.LocalClient{Server: server}

	for _, method := range []string{"GET", "DELETE"} {
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: method, Host: "app.example.com", Path: "/"},
		}}}
		resp, err := client.Check(context.Background(), req)
		if err != nil {
			fmt.Println(err)
			continue
		}
		if extauthz.Allowed(resp) {
			fmt.Println(method, "allowed")
		} else {
			fmt.Println(method, "denied", extauthz.DeniedStatus(resp))
		}
	}
	// Output:
	// GET allowed
	// DELETE denied 403
}
