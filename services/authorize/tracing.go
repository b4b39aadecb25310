package authorize

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/pkg/policy"
	"github.com/gatehouse/gatehouse/pkg/signingkey"
)

// annotateCheck adds the decision to the Check's span (the gRPC server's,
// or the in-process call's): route, decision, reason and whether a live
// session came with the request. Never who: no user id, email, session id
// or token goes in a span.
func annotateCheck(ctx context.Context, routeID string, authenticated bool, decision string, reasons policy.Reasons, reason string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if reason == "" {
		reason = reasons.String()
	}
	span.SetAttributes(
		attribute.String("gatehouse.route", routeID),
		attribute.String("gatehouse.decision", decision),
		attribute.String("gatehouse.reason", reason),
		attribute.Bool("gatehouse.authenticated", authenticated),
	)
}

// sign signs an identity JWT, in a span of its own when tracing is on.
func (st *state) sign(ctx context.Context, claims *signingkey.IdentityClaims) (string, error) {
	if st.tracer == nil {
		return st.keys.Sign(claims)
	}
	_, span := st.tracer.Start(ctx, "sign identity JWT", trace.WithAttributes(attribute.String("gatehouse.audience", claims.Audience)))
	defer span.End()
	jwt, err := st.keys.Sign(claims)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return jwt, err
}
