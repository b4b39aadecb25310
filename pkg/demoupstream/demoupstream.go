// Package demoupstream is the upstream of the all-in-one demo: a page that
// shows what an app behind gatehouse receives — the request headers and
// the claims of the identity JWT (decoded, not verified: it is a demo).
package demoupstream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
)

var page = template.Must(template.New("echo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gatehouse demo upstream</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
td:first-child{white-space:nowrap;font-weight:600}code{word-break:break-all}.note{color:#666}</style></head>
<body><h1>Hello{{if .Email}}, {{.Email}}{{end}}</h1>
<p class="note">This page is the demo upstream. It shows what the app behind gatehouse received for {{.Method}} {{.Path}}.
Your gatehouse pages: <a href="/.pomerium/">/.pomerium/</a> · <a href="/.pomerium/sign_out">sign out</a></p>
<h2>Identity JWT claims (X-Pomerium-Jwt-Assertion)</h2>
{{if .Claims}}<table>{{range .Claims}}<tr><td>{{.Name}}</td><td><code>{{.Value}}</code></td></tr>{{end}}</table>
{{else}}<p>No identity JWT arrived: is pass_identity_headers on for this route?</p>{{end}}
<h2>Request headers</h2>
<table>{{range .Headers}}<tr><td>{{.Name}}</td><td><code>{{.Value}}</code></td></tr>{{end}}</table>
</body></html>`))

type row struct{ Name, Value string }

// Handler shows the request it receives as HTML, or as JSON to clients that
// ask for it.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers := make([]row, 0, len(r.Header))
		for k, v := range r.Header {
			headers = append(headers, row{k, strings.Join(v, ", ")})
		}
		sort.Slice(headers, func(i, j int) bool { return headers[i].Name < headers[j].Name })
		claims := map[string]any{}
		if jwt := r.Header.Get("X-Pomerium-Jwt-Assertion"); jwt != "" {
			if parts := strings.Split(jwt, "."); len(parts) == 3 {
				if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
					_ = json.Unmarshal(b, &claims)
				}
			}
		}
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.Path, "headers": r.Header, "claims": claims})
			return
		}
		rows := make([]row, 0, len(claims))
		for k, v := range claims {
			b, _ := json.Marshal(v)
			rows = append(rows, row{k, string(b)})
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
		email, _ := claims["email"].(string)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]any{"Method": r.Method, "Path": r.URL.Path, "Headers": headers, "Claims": rows, "Email": email})
	})
}

// Run serves Handler on addr until ctx ends.
func Run(ctx context.Context, addr string, logger *slog.Logger) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	logger.Info("demo upstream listening", "address", lis.Addr().String())
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
