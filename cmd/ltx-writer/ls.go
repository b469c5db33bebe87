package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/storage"
)

// runLs lists a replica: per level, each file's TXID range, size and
// timestamp, and the TXIDs a restore can reach.
func runLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ls", "-replica URL", stderr)
	replicaURL := fs.String("replica", "", "replica: a directory, file:///dir or s3://bucket/prefix")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *replicaURL == "" {
		return usagef("-replica is required")
	}
	client, err := storage.Open(ctx, *replicaURL)
	if err != nil {
		return err
	}
	all, err := storage.ListAll(ctx, client, true)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LEVEL\tMIN_TXID\tMAX_TXID\tSIZE\tCREATED")
	for _, f := range all {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", f.Level, f.MinTXID, f.MaxTXID, f.Size, f.CreatedAt.UTC().Format(ltx.RFC3339Milli))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(all) == 0 {
		fmt.Fprintf(stdout, "%s holds no LTX files\n", client)
		return nil
	}
	oldest, newest := plan.Restorable(all)
	if newest == 0 {
		fmt.Fprintf(stdout, "%d files; no snapshot retained: nothing can be restored\n", len(all))
		return nil
	}
	fmt.Fprintf(stdout, "%d files; restorable TXIDs %s (%d) to %s (%d)\n", len(all), oldest, uint64(oldest), newest, uint64(newest))
	return nil
}
