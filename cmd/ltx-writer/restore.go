package main

import (
	"context"
	"errors"
	"io"
)

// runRestore is being built (see the issues); until then it says so.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("restore: not implemented yet")
}
