// Command gatehouse-bench is `make bench` (issue 8): gatehouse's cost per
// request, side by side with a bare Go reverse proxy, in one run.
//
// It starts, all on loopback:
//
//   - a fixed upstream answering every request with 100 bytes, which checks
//     every X-Pomerium-Jwt-Assertion it gets (signature against the JWKS the
//     gatehouse systems publish at /.well-known/pomerium/jwks.json, exp,
//     aud, email) and counts valid, invalid and missing JWTs on a /stats
//     port of its own;
//   - bare-proxy, the baseline: a tuned httputil.ReverseProxy (idle pool
//     sized for the load, pooled copy buffers) and nothing else;
//   - the dev IdP (bin/gatehouse dev-idp);
//   - gatehouse-all-in-one: bin/gatehouse with services: all;
//   - gatehouse-split: proxy, authorize and databroker+authenticate as
//     three bin/gatehouse processes, proxy → authorize over gRPC;
//   - gatehouse-split-redis: the same with the databroker's storage in a
//     redis-server the bench starts;
//   - oauth2-proxy and oauth2-proxy-redis (issue 21): the peer a user would
//     pick instead, at the version the Makefile pins (-oauth2-proxy), OIDC
//     against the same dev IdP, with the cookie and the Redis session store;
//     the bench signs in to it as a browser does (/oauth2/start, the IdP's
//     form, the callback) and loads it with the session cookie; the upstream
//     checks every request carries X-Forwarded-Email of the signed-in user.
//
// Both gatehouse systems serve one route, http://bench.localhost:PORT, with
// pass_identity_headers and the Grafana guide's policy (allow: or: domain:
// is: example.com). The bench signs in to each the way a command-line client
// does (/.pomerium/api/v1/login, the IdP's form as alice@example.com,
// pomerium_jwt=<handle> back) and sends one request through to check it
// reaches the upstream with a valid identity JWT.
//
// Then wrk loads each system with `Authorization: Bearer Pomerium-<handle>`
// at every connection count, the systems interleaved (A, B, C, A, B, C, …)
// over -rounds rounds after an unmeasured warm-up. For every run it records
// requests/s, p50 and p99, and each process's CPU (utime+stime from
// /proc/PID/stat, before and after) per request. It prints per system and
// connection count the medians over the rounds, CPU µs per request per
// process and in total, and the ratios to bare-proxy, as a table and as JSON
// (-out; logs and generated configs beside it).
//
// It exits non-zero when any answer is not 2xx (a wrk Lua script counts 3xx
// too), when the upstream saw fewer requests than wrk got answers, or, for
// gatehouse, when any request reached the upstream without a valid identity
// JWT (oauth2-proxy: the user's X-Forwarded-Email). Issue 21's ratio
// targets are reported as met or missed, not enforced.
//
// Usage:
//
//	make bench                                  # 3 rounds of 10 s at 32 and 256 connections
//	make bench BENCH_FLAGS="-rounds 1 -duration 3s -connections 32"
//	gatehouse-bench [-gatehouse bin/gatehouse] [-out bin/bench/results.json]
//	    [-rounds 3] [-duration 10s] [-warmup 2s] [-connections 32,256]
//	    [-threads 2] [-oauth2-proxy .tools/oauth2-proxy-VERSION]
//	    [-systems bare-proxy,gatehouse-all-in-one,gatehouse-split,gatehouse-split-redis,oauth2-proxy,oauth2-proxy-redis]
//	    [-log-level LEVEL]
//
// It also runs its own helper processes, re-executing itself, so that their
// CPU is measured apart:
//
//	gatehouse-bench upstream --address A --stats-address S [--jwks URL]... [--audience H] [--email E]
//	gatehouse-bench bare-proxy --address A --to URL
//
// wrk and redis-server are installed from Debian (apt-get install -y) when
// missing.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var err error
	args := os.Args[1:]
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "", "run":
		err = benchCommand(args)
	case "upstream":
		err = upstreamCommand(args)
	case "bare-proxy":
		err = bareProxyCommand(args)
	default:
		err = fmt.Errorf("unknown command %q (want run, upstream or bare-proxy)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-bench:", err)
		os.Exit(1)
	}
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
