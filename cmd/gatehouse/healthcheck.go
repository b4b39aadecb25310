package main

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthcheckCommand exits 0 when the URL answers 200: a container health
// check for images without curl.
func healthcheckCommand(args []string, stdout io.Writer) error {
	fs := newFlagSet("healthcheck")
	url := fs.String("url", "http://127.0.0.1:28080/readyz", "URL that must answer 200")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get(*url)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *url, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
