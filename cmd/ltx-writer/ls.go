package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/storage"
)

// runLs lists a replica: per level, each file's TXID range, size and
// timestamp, the TXIDs a restore can reach, and its manifest.
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
	if errors.Is(err, errors.ErrUnsupported) {
		// A web server: nothing to list, the manifest says what there is.
		fmt.Fprintf(stdout, "%s cannot be listed (%v)\n", client, err)
		fmt.Fprintln(stdout, describeManifest(ctx, client, nil, 0, time.Now()))
		return nil
	}
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
	oldest, newest := plan.Restorable(all)
	switch {
	case len(all) == 0:
		fmt.Fprintf(stdout, "%s holds no LTX files\n", client)
	case newest == 0:
		fmt.Fprintf(stdout, "%d files; no snapshot retained: nothing can be restored\n", len(all))
	default:
		fmt.Fprintf(stdout, "%d files; restorable TXIDs %s (%d) to %s (%d)\n", len(all), oldest, uint64(oldest), newest, uint64(newest))
	}
	fmt.Fprintln(stdout, describeManifest(ctx, client, all, newest, time.Now()))
	return nil
}

// describeManifest says what the replica's manifest names, and what is
// wrong with it: missing, invalid, naming a file the listing lacks, or
// stale (behind the newest TXID the listing restores). Readers list the
// replica in every case but the last.
func describeManifest(ctx context.Context, c storage.Client, all []*ltx.FileInfo, newest ltx.TXID, now time.Time) string {
	b, _, err := storage.ReadAllObject(ctx, c, manifest.Name, storage.ReadOptions{}, manifest.MaxSize)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "manifest: none (readers list the replica, as they do a Litestream replica)"
	case err != nil:
		return fmt.Sprintf("manifest: cannot be read: %v", err)
	}
	m, err := manifest.Decode(b)
	if err != nil {
		return fmt.Sprintf("manifest: INVALID (readers list the replica instead): %v", err)
	}
	age := now.Sub(m.Published).Round(time.Millisecond)
	line := fmt.Sprintf("manifest: TXID %s (%d), seq %d, published %s ago (%s), %d files",
		m.TXID, uint64(m.TXID), m.Seq, age, m.Published.UTC().Format(ltx.RFC3339Milli), len(m.Files))
	if all == nil { // not listed (storage that cannot list): nothing to compare
		return line
	}
	listed := make(map[string]int64, len(all))
	for _, f := range all {
		listed[storage.FileName(f.Level, f.MinTXID, f.MaxTXID)] = f.Size
	}
	for _, f := range m.Files {
		if size, ok := listed[f.Name()]; !ok || size != f.Size {
			return line + fmt.Sprintf("; names %s of %d bytes, which the replica does not hold (readers list the replica instead)", f.Name(), f.Size)
		}
	}
	if m.TXID < newest {
		return line + fmt.Sprintf("; STALE: the replica restores up to TXID %s (%d) (readers following the manifest lag behind it)", newest, uint64(newest))
	}
	return line
}
