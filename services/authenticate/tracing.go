package authenticate

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
)

// exchange trades an authorization code for the IdP's tokens, in a span
// of its own when tracing is on (the HTTP call to the token endpoint is
// its child). The span names the provider, never the code or the tokens.
func (s *Service) exchange(ctx context.Context, st *state, d *discovered, code, verifier string) (*oauth2.Token, error) {
	if s.tracer == nil {
		return d.oauth.Exchange(st.idp.context(ctx), code, oauth2.VerifierOption(verifier))
	}
	ctx, span := s.tracer.Start(ctx, "IdP token exchange", trace.WithAttributes(
		attribute.String("gatehouse.idp.provider", st.idp.settings.provider),
	))
	defer span.End()
	tok, err := d.oauth.Exchange(st.idp.context(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		span.SetStatus(codes.Error, "code exchange failed")
	}
	return tok, err
}
