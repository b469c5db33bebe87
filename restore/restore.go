package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/compact"
	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/storage"
)

// Options choose what Run rebuilds.
type Options struct {
	// TXID restores the database as of that TXID; Time as of the newest
	// TXID committed at or before it. Neither: the newest TXID.
	TXID ltx.TXID
	Time time.Time

	// Force overwrites an existing file at the destination (and removes
	// its -wal and -shm files, which would otherwise be applied to it).
	Force bool

	// Progress, if set, is called as pages are written: done of total.
	Progress func(done, total int64)
}

// Result describes a restored database.
type Result struct {
	TXID      ltx.TXID
	Timestamp time.Time // commit time of TXID
	Pages     uint32
	PageSize  uint32
	Files     []*ltx.FileInfo // the plan: snapshot first
}

// ErrDestinationExists is wrapped by Run's error for a destination that
// exists when Force is not set.
var ErrDestinationExists = errors.New("destination exists")

// Run rebuilds the database of a replica into the file dstPath: it lists
// every level (with the storage code the VFS uses), plans with
// plan.Restore (a snapshot, then the files that reach the target, as few
// as the replica allows), streams the plan's files through the ltx
// Compactor into a temp file beside dstPath (each verified as it streams:
// see package compact), checks the result's checksum against the
// replica's and runs PRAGMA integrity_check, and only then renames it into
// place.
func Run(ctx context.Context, client storage.Client, dstPath string, opts Options) (*Result, error) {
	if opts.TXID != 0 && !opts.Time.IsZero() {
		return nil, errors.New("restore: give a TXID or a time, not both")
	}
	dst, err := filepath.Abs(dstPath)
	if err != nil {
		return nil, fmt.Errorf("restore to %s: %w", dstPath, err)
	}
	if err := checkDestination(dst, opts.Force); err != nil {
		return nil, err
	}

	files, err := storage.ListAll(ctx, client, !opts.Time.IsZero())
	if errors.Is(err, errors.ErrUnsupported) {
		// Storage that cannot list (a web server): the files of its
		// manifest's plan, which reach the TXIDs it passes through.
		files, err = manifestFiles(ctx, client, err)
	}
	if err != nil {
		return nil, err
	}
	target := opts.TXID
	if !opts.Time.IsZero() {
		if target, err = plan.TXIDAt(files, opts.Time); err != nil {
			return nil, fmt.Errorf("restore %s at %s: %w", client, opts.Time.UTC().Format(time.RFC3339), err)
		}
	}
	chain, err := plan.Restore(files, target)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", client, err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.restore")
	if err != nil {
		return nil, fmt.Errorf("restore to %s: %w", dst, err)
	}
	defer func() {
		tmp.Close()
		removeDB(tmp.Name())
	}()

	hdr, err := decodePlan(ctx, client, chain, tmp, opts.Progress)
	if err != nil {
		return nil, fmt.Errorf("restore %s at TXID %s: %w", client, chain[len(chain)-1].MaxTXID, err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("restore to %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("restore to %s: %w", dst, err)
	}
	if err := integrityCheck(tmp.Name()); err != nil {
		return nil, fmt.Errorf("restore %s at TXID %s: %w", client, hdr.MaxTXID, err)
	}
	if opts.Force {
		for _, suffix := range []string{"-wal", "-shm"} {
			if err := os.Remove(dst + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("restore to %s: remove stale %s: %w", dst, dst+suffix, err)
			}
		}
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return nil, fmt.Errorf("restore to %s: %w", dst, err)
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return &Result{
		TXID:      hdr.MaxTXID,
		Timestamp: time.UnixMilli(hdr.Timestamp).UTC(),
		Pages:     hdr.Commit,
		PageSize:  hdr.PageSize,
		Files:     chain,
	}, nil
}

// checkDestination refuses to overwrite a database, or to put one beside a
// stale WAL, unless forced.
func checkDestination(dst string, force bool) error {
	if fi, err := os.Stat(dst); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("restore to %s: it is a directory", dst)
		}
		if !force {
			return fmt.Errorf("restore to %s: %w (use -f to overwrite)", dst, ErrDestinationExists)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore to %s: %w", dst, err)
	}
	if !force {
		for _, suffix := range []string{"-wal", "-shm"} {
			if _, err := os.Stat(dst + suffix); err == nil {
				return fmt.Errorf("restore to %s: %w: %s is left from another database and would be applied to the restored one (use -f to remove it)", dst, ErrDestinationExists, dst+suffix)
			}
		}
	}
	if fi, err := os.Stat(filepath.Dir(dst)); err != nil || !fi.IsDir() {
		return fmt.Errorf("restore to %s: directory %s does not exist", dst, filepath.Dir(dst))
	}
	return nil
}

// decodePlan compacts the plan's files into one snapshot stream and
// decodes it into w, page after page. The decoder checks the snapshot's
// rolling checksum against the one the last file recorded; each file is
// verified as it streams (see package compact), and a damaged one fails the restore
// with an error that names it.
func decodePlan(ctx context.Context, client storage.Client, files []*ltx.FileInfo, w io.Writer, progress func(done, total int64)) (ltx.Header, error) {
	ins, closeAll, err := compact.Open(ctx, client, files)
	if err != nil {
		return ltx.Header{}, err
	}
	defer closeAll()
	pr, pw := io.Pipe()
	compacted := make(chan error, 1)
	go func() {
		err := compact.To(ctx, pw, ins)
		pw.CloseWithError(err)
		compacted <- err
	}()

	hdr, err := decodeSnapshot(pr, w, progress)
	pr.CloseWithError(errors.New("restore ended"))
	if err != nil {
		closeAll() // unblocks the Compactor's reads, if storage stalls
		if cerr := <-compacted; cerr != nil && errors.Is(err, cerr) {
			return ltx.Header{}, cerr // what failed, without where the decoder was then
		}
		return ltx.Header{}, err
	}
	return hdr, <-compacted
}

// decodeSnapshot decodes the snapshot stream r into w.
func decodeSnapshot(r io.Reader, w io.Writer, progress func(done, total int64)) (ltx.Header, error) {
	hdr, body, err := ltx.PeekHeader(r)
	if err != nil {
		return ltx.Header{}, fmt.Errorf("read compacted header: %w", err)
	}
	pw := &progressWriter{w: w, pageSize: int64(hdr.PageSize), total: int64(hdr.Commit), fn: progress}
	if err := ltx.NewDecoder(body).DecodeDatabaseTo(pw); err != nil {
		return ltx.Header{}, err
	}
	return hdr, nil
}

type progressWriter struct {
	w        io.Writer
	pageSize int64
	total    int64
	n        int64
	fn       func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if p.fn != nil {
		p.fn(p.n/p.pageSize, p.total)
	}
	return n, err
}

// integrityCheck runs PRAGMA integrity_check on the database at path.
func integrityCheck(path string) error {
	c, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READWRITE)
	if err != nil {
		return fmt.Errorf("open restored database: %w", err)
	}
	defer c.Close()
	stmt, _, err := c.Prepare("PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer stmt.Close()
	var lines []string
	for stmt.Step() {
		lines = append(lines, stmt.ColumnText(0))
	}
	if err := stmt.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(lines) != 1 || lines[0] != "ok" {
		if len(lines) > 5 {
			lines = append(lines[:5], "...")
		}
		return fmt.Errorf("integrity check failed: %s", strings.Join(lines, "; "))
	}
	return nil
}

// removeDB removes a database file and its -wal and -shm files.
func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

// manifestFiles are the files the replica's manifest names, for a replica
// that cannot be listed (listErr says why).
func manifestFiles(ctx context.Context, client storage.Client, listErr error) ([]*ltx.FileInfo, error) {
	b, _, err := storage.ReadAllObject(ctx, client, manifest.Name, storage.ReadOptions{}, manifest.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("%w; and its manifest cannot be read: %w", listErr, err)
	}
	m, err := manifest.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w; and its manifest: %w", listErr, err)
	}
	files := make([]*ltx.FileInfo, len(m.Files))
	for i, f := range m.Files {
		files[i] = f.Info()
	}
	return files, nil
}
