package main

import (
	"io"

	"github.com/gatehouse/gatehouse/pkg/devidp"
)

// devIDPCommand runs the development OpenID Connect provider until
// SIGINT/SIGTERM.
func devIDPCommand(args []string, stdout io.Writer) error {
	ctx, stop := signalContext()
	defer stop()
	return devidp.RunCommand(ctx, args, stdout)
}
