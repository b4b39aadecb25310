// Command gatehouse-bench is `make bench`: it starts a fixed upstream, a bare
// tuned Go reverse proxy (the baseline), gatehouse all-in-one and gatehouse
// split (proxy, authorize and databroker+authenticate as separate
// processes), signs in to each gatehouse system as a user would, loads every
// system with wrk in turn (A, B, C, A, B, C, ...), and reports requests/s,
// latency and the CPU each process spends per request, with ratios to the
// baseline, as a table and as JSON.
//
// It also runs its own helper processes, so that their CPU is measured apart:
//
//	gatehouse-bench upstream --address A --stats-address S [--jwks URL]...
//	gatehouse-bench bare-proxy --address A --to URL
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
