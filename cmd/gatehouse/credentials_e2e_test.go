package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/grpcutil"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
	"github.com/gatehouse/gatehouse/pkg/testutil"

	// The services' descriptors, so every method can be called by name.
	_ "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	_ "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// No credential a user can get hold of passes as a service token: not a
// live session handle, not an expired or signed-out one, not the hand-off
// values of the callback URL, not a programmatic pomerium_jwt, and not a
// handle-shaped token signed with the raw shared_secret (the service-token
// key). Each is tried, in both metadata forms, on every method of every
// authorize and databroker service, which must answer Unauthenticated
// before doing anything. A real service token still works.
func TestUserCredentialsAreNotServiceTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole deployment")
	}
	d := startDeployment(t, "redis")
	sharedKey, err := cryptutil.DecodeSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	route := d.proxyURL("proxy-a", "/")

	// A user every route denies still gets a session handle.
	mallory := d.browser()
	var handoffValues []string
	mallory.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.Path, "/.pomerium/callback") {
			for _, vs := range req.URL.Query() {
				handoffValues = append(handoffValues, vs...)
			}
		}
		return nil
	}
	resp := d.signIn(mallory, route, "mallory@evil.test", "Mallory", "admins")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("mallory: %d, want 403", resp.StatusCode)
	}
	if len(handoffValues) == 0 {
		t.Fatal("saw no callback URL during sign-in")
	}
	handle := sessionCookie(t, mallory, route)

	// A programmatic sign-in's pomerium_jwt.
	pomeriumJWT := programmaticJWT(t, d, route)

	// A handle that was signed out.
	victim := d.browser()
	d.signIn(victim, route, "carol@example.com", "Carol", "").Body.Close()
	signedOut := sessionCookie(t, victim, route)
	signOut(t, victim, d.proxyURL("proxy-a", "/.pomerium/sign_out"))

	now := time.Now()
	expired, err := sessionhandle.Encode(cryptutil.PurposeKey(sharedKey, cryptutil.PurposeSessionHandle), &sessionhandle.Handle{
		ID: "expired-session", UserID: "u", IssuedAt: now.Add(-2 * time.Hour), Expiry: now.Add(-time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Today's attack, should a handle ever be keyed like a service token.
	rawKeyed, err := sessionhandle.Encode(sharedKey, &sessionhandle.Handle{
		ID: "forged", UserID: "u", IssuedAt: now, Expiry: now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}

	creds := map[string]string{
		"session handle":         handle,
		"signed-out handle":      signedOut,
		"expired handle":         expired,
		"handle under raw key":   rawKeyed,
		"programmatic jwt":       pomeriumJWT,
		"pomerium_jwt as bearer": "Pomerium-" + pomeriumJWT,
	}
	for i, v := range handoffValues {
		creds["hand-off value "+string(rune('a'+i))] = v
	}

	servers := map[string]string{
		"databroker": d.grpcAddr("databroker-1"),
		"authorize":  d.grpcAddr("authorize-1"),
	}
	for server, addr := range servers {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		methods := serviceMethods(t, cc)
		if len(methods) == 0 {
			t.Fatalf("%s: reflection lists no services", server)
		}
		for credName, cred := range creds {
			for _, form := range []string{"jwt", "authorization"} {
				value := cred
				if form == "authorization" {
					value = "Bearer " + cred
				}
				for _, m := range methods {
					if code := call(t, cc, m, metadata.Pairs(form, value)); code != codes.Unauthenticated {
						t.Errorf("%s %s with %s in %q metadata: %v, want Unauthenticated", server, m.FullName(), credName, form, code)
					}
				}
			}
		}
		// The control: a real service token passes authentication (the
		// call then fails or succeeds on its own merits).
		tok, err := grpcutil.NewServiceToken(sharedKey, time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range methods {
			if code := call(t, cc, m, metadata.Pairs("jwt", tok)); code == codes.Unauthenticated {
				t.Errorf("%s %s with a service token: Unauthenticated", server, m.FullName())
			}
		}
	}
}

// grpcAddr is a process's GRPC_ADDRESS.
func (d *deployment) grpcAddr(name string) string {
	for _, e := range d.procs[name].env {
		if addr, ok := strings.CutPrefix(e, "GRPC_ADDRESS="); ok {
			return addr
		}
	}
	d.t.Fatalf("no gRPC address for %s", name)
	return ""
}

// serviceMethods lists, by server reflection, every method of every service
// on cc except health and reflection, which are open by design.
func serviceMethods(t *testing.T, cc *grpc.ClientConn) []protoreflect.MethodDescriptor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var out []protoreflect.MethodDescriptor
	for _, s := range resp.GetListServicesResponse().GetService() {
		if strings.HasPrefix(s.Name, "grpc.health.") || strings.HasPrefix(s.Name, "grpc.reflection.") {
			continue
		}
		desc, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(s.Name))
		if err != nil {
			t.Fatalf("service %s: %v", s.Name, err)
		}
		sd := desc.(protoreflect.ServiceDescriptor)
		for i := 0; i < sd.Methods().Len(); i++ {
			out = append(out, sd.Methods().Get(i))
		}
	}
	return out
}

// call invokes m with an empty request and md, and returns the status code
// of the first answer.
func call(t *testing.T, cc *grpc.ClientConn, m protoreflect.MethodDescriptor, md metadata.MD) codes.Code {
	t.Helper()
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), md), 10*time.Second)
	defer cancel()
	full := "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
	desc := &grpc.StreamDesc{StreamName: string(m.Name()), ServerStreams: m.IsStreamingServer(), ClientStreams: m.IsStreamingClient()}
	stream, err := cc.NewStream(ctx, desc, full, grpc.WaitForReady(true))
	if err != nil {
		return status.Code(err)
	}
	if err := stream.SendMsg(dynamicpb.NewMessage(m.Input())); err != nil && err != io.EOF {
		return status.Code(err)
	}
	if err := stream.CloseSend(); err != nil {
		return status.Code(err)
	}
	err = stream.RecvMsg(dynamicpb.NewMessage(m.Output()))
	if err == io.EOF {
		return codes.OK
	}
	return status.Code(err)
}

// programmaticJWT signs in through the proxy's programmatic login with a
// localhost destination and returns the pomerium_jwt it hands back.
func programmaticJWT(t *testing.T, d *deployment, route string) string {
	t.Helper()
	c := d.browser()
	dest := "http://localhost:1/cli-callback"
	login := strings.TrimSuffix(route, "/") + "/.pomerium/api/v1/login?pomerium_redirect_uri=" + url.QueryEscape(dest)
	resp := get(t, c, login)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("programmatic login: %d %s", resp.StatusCode, body)
	}
	var jwt string
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if v := req.URL.Query().Get("pomerium_jwt"); v != "" {
			jwt = v
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp = testutil.DevIDPSignIn(t, c, strings.TrimSpace(string(body)), "mallory@evil.test", "Mallory", "admins")
	resp.Body.Close()
	if jwt == "" {
		t.Fatalf("programmatic sign-in ended at %s %d without pomerium_jwt", resp.Request.URL, resp.StatusCode)
	}
	return jwt
}

var (
	formRE   = regexp.MustCompile(`(?is)<form[^>]*method="post"[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	hiddenRE = regexp.MustCompile(`(?is)<input[^>]*type="hidden"[^>]*name="([^"]*)"[^>]*value="([^"]*)"`)
)

// signOut opens u as a browser and, when it shows a confirmation form,
// submits it, so the session ends whichever way the sign-out page asks.
func signOut(t *testing.T, c *http.Client, u string) {
	t.Helper()
	resp := testutil.BrowserGet(t, c, u)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := formRE.FindSubmatch(body)
	if m == nil {
		return
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{}
	for _, in := range hiddenRE.FindAllSubmatch(m[2], -1) {
		form.Add(html.UnescapeString(string(in[1])), html.UnescapeString(string(in[2])))
	}
	resp, err = c.PostForm(action.String(), form)
	if err != nil {
		t.Fatalf("sign out: %v", err)
	}
	resp.Body.Close()
}
