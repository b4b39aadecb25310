package devidp_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/pkg/devidp"
)

// Example signs in as alice by program: open the authorization URL, then
// POST the login form (email, name, groups and the hidden authRequestID) to
// {issuer}/login; the answer redirects to the redirect_uri with code and
// state.
func Example() {
	ts := httptest.NewUnstartedServer(nil) // 127.0.0.1, a free port
	idp, err := devidp.New(devidp.Config{
		Issuer:       "http://" + ts.Listener.Addr().String(),
		ClientID:     "app",
		ClientSecret: "secret",
		RedirectURIs: []string{"https://app.example.com/callback"},
	})
	if err != nil {
		log.Fatal(err)
	}
	ts.Config.Handler = idp.Handler()
	ts.Start()
	defer ts.Close()

	// Stop at the redirect that leaves the IdP.
	client := &http.Client{CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host != ts.Listener.Addr().String() {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	ctx := oidc.ClientContext(context.Background(), client)
	provider, err := oidc.NewProvider(ctx, idp.Issuer())
	if err != nil {
		log.Fatal(err)
	}
	conf := oauth2.Config{
		ClientID: "app", ClientSecret: "secret", Endpoint: provider.Endpoint(),
		RedirectURL: "https://app.example.com/callback",
		Scopes:      []string{oidc.ScopeOpenID, "profile", "email", "groups"},
	}
	verifier := oauth2.GenerateVerifier()

	// The authorization URL redirects to {issuer}/login?authRequestID=...
	resp, err := client.Get(conf.AuthCodeURL("xyz", oidc.Nonce("n-1"), oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	authRequestID := resp.Request.URL.Query().Get("authRequestID")

	resp, err = client.PostForm(idp.Issuer()+"/login", url.Values{
		"authRequestID": {authRequestID},
		"email":         {"alice@example.com"},
		"name":          {"Alice Smith"},
		"groups":        {"admins,dev"},
	})
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	back, _ := resp.Location()
	fmt.Println(resp.StatusCode, back.Host, back.Query().Get("state"))

	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		log.Fatal(err)
	}
	idToken, err := provider.Verifier(&oidc.Config{ClientID: "app"}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		log.Fatal(err)
	}
	var claims struct {
		Sub           string   `json:"sub"`
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		Name          string   `json:"name"`
		Groups        []string `json:"groups"`
	}
	_ = idToken.Claims(&claims)
	fmt.Println(claims.Sub == devidp.Subject("alice@example.com"), claims.Email, claims.EmailVerified, claims.Name, claims.Groups)
	fmt.Println(regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(claims.Sub))
	// Output:
	// 302 app.example.com xyz
	// true alice@example.com true Alice Smith [admins dev]
	// true
}
