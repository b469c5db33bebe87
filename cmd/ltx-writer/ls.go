package main

import (
	"context"
	"errors"
	"io"
)

// runLs is being built (see the issues); until then it says so.
func runLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("ls: not implemented yet")
}
