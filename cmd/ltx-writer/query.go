package main

import (
	"context"
	"errors"
	"io"
)

// runQuery is being built (see the issues); until then it says so.
func runQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("query: not implemented yet")
}
