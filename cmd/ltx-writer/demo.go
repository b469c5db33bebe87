package main

import (
	"context"
	"errors"
	"io"
)

// runDemo is being built (see the issues); until then it says so.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("demo: not implemented yet")
}
