package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/pointintime"
	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
)

// runRestore rebuilds a database file from a replica.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", "-replica URL -o PATH [-txid N | -time T] [-f]", stderr)
	replicaURL := fs.String("replica", "", "replica: a directory, file:///dir or s3://bucket/prefix")
	out := fs.String("o", "", "database file to write")
	txidFlag := fs.String("txid", "", "restore as of this TXID (decimal, or 16 hex digits as in file names)")
	timeFlag := fs.String("time", "", "restore as of this time: RFC 3339 (2006-01-02T15:04:05Z) or relative (-5m)")
	force := fs.Bool("f", false, "overwrite the output file if it exists")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *replicaURL == "" || *out == "" {
		return usagef("-replica and -o are required")
	}
	var opts restore.Options
	opts.Force = *force
	if *txidFlag != "" && *timeFlag != "" {
		return usagef("give -txid or -time, not both")
	}
	if *txidFlag != "" {
		txid, err := pointintime.ParseTXID(*txidFlag)
		if err != nil {
			return usagef("-txid: %v", err)
		}
		opts.TXID = txid
	}
	if *timeFlag != "" {
		t, err := pointintime.ParseTime(*timeFlag, time.Now())
		if err != nil {
			return usagef("-time: %v", err)
		}
		opts.Time = t
	}
	client, err := storage.Open(ctx, *replicaURL)
	if err != nil {
		return err
	}
	if isTerminal(stderr) {
		opts.Progress = progressPrinter(stderr)
	}
	res, err := restore.Run(ctx, client, *out, opts)
	if opts.Progress != nil {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		// The TXID or time as the user gave it: the error spells TXIDs in hex.
		if errors.Is(err, plan.ErrTXIDNotFound) || errors.Is(err, plan.ErrTXIDUnavailable) {
			switch {
			case *txidFlag != "":
				err = fmt.Errorf("-txid %s: %w", *txidFlag, err)
			case *timeFlag != "":
				err = fmt.Errorf("-time %s: %w", *timeFlag, err)
			}
		}
		return err
	}
	fmt.Fprintf(stdout, "restored %s to %s: TXID %s (%d), committed %s, %d pages of %d bytes, from %d files\n",
		client, *out, res.TXID, uint64(res.TXID), res.Timestamp.Format(ltx.RFC3339Milli), res.Pages, res.PageSize, len(res.Files))
	return nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressPrinter rewrites one line with the percentage done, at most
// once a percent.
func progressPrinter(w io.Writer) func(done, total int64) {
	last := int64(-1)
	return func(done, total int64) {
		if total <= 0 {
			return
		}
		pct := done * 100 / total
		if pct == last {
			return
		}
		last = pct
		fmt.Fprintf(w, "\rrestoring: %3d%% (%d of %d pages)", pct, done, total)
	}
}
