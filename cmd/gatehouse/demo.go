package main

import (
	"io"
	"os"

	"github.com/gatehouse/gatehouse/pkg/demoupstream"
	"github.com/gatehouse/gatehouse/pkg/logging"
)

// demoUpstreamCommand runs the demo upstream that shows the headers and
// identity JWT it receives.
func demoUpstreamCommand(args []string, _ io.Writer) error {
	fs := newFlagSet("demo-upstream")
	addr := fs.String("address", "127.0.0.1:8080", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	return demoupstream.Run(ctx, *addr, logging.New(os.Stderr, "info", "text"))
}
