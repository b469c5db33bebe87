package main

import (
	"context"
	"errors"
	"io"
)

// runReplicate is being built (see the issues); until then it says so.
func runReplicate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("replicate: not implemented yet")
}
