package main

import (
	"errors"
	"io"
)

func devIDPCommand(args []string, stdout io.Writer) error {
	return errors.New("dev-idp is not available in this build yet")
}
