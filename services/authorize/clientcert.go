package authorize

import (
	"bytes"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/clientcert"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/policy"
)

// StatusInvalidClientCertificate is the HTTP status of a request denied
// for its client certificate (missing or invalid), as Pomerium (and
// nginx) answer it.
const StatusInvalidClientCertificate = 495

// fingerprintVar is the set_request_headers variable replaced by the
// client certificate's SHA-256 fingerprint.
const fingerprintVar = "${pomerium.client_cert_fingerprint}"

// Client certificate answers for routes without a client CA: every
// request counts as valid there, as in Pomerium, and nothing is verified.
var (
	noCANone      = &policy.ClientCertificate{Valid: true}
	noCAPresented = &policy.ClientCertificate{Presented: true, Valid: true}
)

// clientCertificate returns what the route's policy knows of the client
// certificate the proxy forwarded (attributes.source.certificate, which
// the proxy fills from its TLS stack and never from a header), with why it
// is not valid ("" when it is).
func clientCertificate(r *route, req *authv3.CheckRequest, now time.Time) (*policy.ClientCertificate, string) {
	s := req.GetAttributes().GetSource().GetCertificate()
	if r.cfg.ClientCA != nil {
		return r.cfg.ClientCA.Check(s, now)
	}
	if s == "" {
		return noCANone, ""
	}
	return noCAPresented, ""
}

// certDenied reports whether a decision denies the request for its client
// certificate.
func certDenied(d *policy.Decision) bool {
	return d.DenyResult.Value && d.DenyResult.Reasons&(policy.ReasonInvalidClientCertificate|policy.ReasonClientCertificateRequired) != 0
}

// invalidClientCertificate answers 495, as Pomerium does for a request
// denied by invalid_client_certificate.
func invalidClientCertificate(req *authv3.CheckRequest, host, requestID string, reasons policy.Reasons) *authv3.CheckResponse {
	code, msg := "invalid_client_certificate", "The client certificate you presented is not valid for this route."
	if reasons.Has(policy.ReasonClientCertificateRequired) {
		code, msg = "client_certificate_required", "This route requires a client certificate, and your browser or client did not present one."
	}
	if !isBrowser(req) {
		return extauthz.Denied(StatusInvalidClientCertificate, []*corev3.HeaderValueOption{
			extauthz.NewHeader("content-type", "application/json"),
			extauthz.NewHeader("cache-control", "no-store"),
		}, jsonError(code, requestID))
	}
	h := extauthz.HTTPRequest(req)
	var buf bytes.Buffer
	if err := errorPage.Execute(&buf, errorPageData{
		Status: StatusInvalidClientCertificate, Title: "Invalid Client Certificate", Message: msg,
		Method: h.GetMethod(), URL: requestURL(h, host), RequestID: requestID,
	}); err != nil {
		buf.Reset()
		buf.WriteString("Invalid Client Certificate")
	}
	return extauthz.Denied(StatusInvalidClientCertificate, []*corev3.HeaderValueOption{
		extauthz.NewHeader("content-type", "text/html; charset=utf-8"),
		extauthz.NewHeader("cache-control", "no-store"),
	}, buf.String())
}

// withFingerprint returns resp with ${pomerium.client_cert_fingerprint}
// replaced in its headers by the fingerprint of the forwarded certificate
// ("" without one). Only routes whose set_request_headers use the variable
// pay for the copy.
func withFingerprint(resp *authv3.CheckResponse, cert *policy.ClientCertificate, req *authv3.CheckRequest) *authv3.CheckResponse {
	fp := cert.Fingerprint
	if fp == "" && cert.Presented {
		if chain, err := clientcert.ParseChain(req.GetAttributes().GetSource().GetCertificate()); err == nil {
			fp = clientcert.Fingerprint(chain[0])
		}
	}
	ok := resp.GetOkResponse()
	headers := make([]*corev3.HeaderValueOption, len(ok.GetHeaders()))
	for i, h := range ok.GetHeaders() {
		if v := h.GetHeader().GetValue(); strings.Contains(v, fingerprintVar) {
			h = extauthz.NewHeader(h.GetHeader().GetKey(), strings.ReplaceAll(v, fingerprintVar, fp))
		}
		headers[i] = h
	}
	return &authv3.CheckResponse{
		Status: resp.GetStatus(),
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: headers, HeadersToRemove: ok.GetHeadersToRemove(),
		}},
	}
}
