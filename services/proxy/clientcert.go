package proxy

import (
	"context"
	"net"
	"net/http"
	"sync"

	"github.com/gatehouse/gatehouse/pkg/clientcert"
)

// connCertKey is the context key of a connection's connCert.
type connCertKey struct{}

// connCert keeps the encoding of a connection's client certificate chain,
// made once for all the requests of the connection.
type connCert struct {
	once sync.Once
	s    string
}

// ConnContext is the http.Server.ConnContext of the listener serving
// Handler: it gives each connection the place where the proxy keeps its
// client certificate's encoding, so that a keep-alive or HTTP/2
// connection encodes it once rather than on every request. Without it the
// proxy encodes the certificate per request.
func ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connCertKey{}, new(connCert))
}

// clientCertificate returns the client certificate chain the TLS
// handshake of r's connection verified the possession of (PeerCertificates:
// the stack checked the client's signature with the leaf's key), encoded
// for the CheckRequest; "" when the client sent none. Authorize verifies
// it against the route's client CA. It is never read from a header.
func clientCertificate(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	if cc, ok := r.Context().Value(connCertKey{}).(*connCert); ok {
		cc.once.Do(func() { cc.s = clientcert.Encode(r.TLS.PeerCertificates) })
		return cc.s
	}
	return clientcert.Encode(r.TLS.PeerCertificates)
}
