package writer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// Snapshot writes a snapshot of the database at the replica's newest TXID
// to the snapshot level (storage.SnapshotLevel), as [1, TXID]. It
// checkpoints first, through the writer's one checkpoint path, so that the
// snapshot reads the database file rather than a long WAL; it then reads
// the database as of that TXID under the read transaction, while syncs go
// on, and refuses to upload unless what it read has the replica's checksum
// for that TXID.
func (r *Replicator) Snapshot(ctx context.Context) (*ltx.FileInfo, error) {
	if err := r.Open(ctx); err != nil {
		return nil, err
	}
	r.maintMu.Lock()
	defer r.maintMu.Unlock()

	r.mu.Lock()
	if r.cs == nil {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	err := r.syncLocked(ctx)
	if err == nil {
		err = r.checkpointLocked(ctx, CheckpointPassive, "snapshot")
	}
	if err != nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("snapshot %s: %w", r.path, err)
	}
	// Freeze the view: pages come from the WAL frames copied so far, else
	// from the database file, which no checkpoint can touch past them
	// while snapMu keeps the read transaction in place.
	if !r.snapMu.TryRLock() {
		// Only Close holds it for writing while mu is free to take.
		r.mu.Unlock()
		return nil, ErrClosed
	}
	defer r.snapMu.RUnlock()
	txid, post, ts := r.st.txid, r.st.post, r.st.timestamp
	view := &dbView{db: r.dbFile, commit: r.st.commit, pageSize: r.pageSize}
	var wal *os.File
	if r.st.hasGen {
		hdr, hasHdr, f, err := r.openWAL()
		if err == nil && (!hasHdr || !r.st.pos.sameGeneration(hdr)) {
			err = fmt.Errorf("%w: the WAL generation changed before the snapshot began", errWALChanged)
			if f != nil {
				f.Close()
			}
		}
		if err != nil {
			r.mu.Unlock()
			return nil, fmt.Errorf("snapshot %s: %w", r.path, err)
		}
		wal = f
		defer wal.Close()
		view.wal, view.hdr, view.gen = wal, hdr, maps.Clone(r.st.gen)
	}
	r.mu.Unlock()

	if txid == 0 {
		return nil, fmt.Errorf("snapshot %s: nothing replicated yet", r.path)
	}
	// A snapshot at this TXID is there already (nothing was committed
	// since the last one, or a Litestream snapshot): it holds the same
	// database, though perhaps not the same bytes (other flags, another
	// encoder), and files are never written over.
	if info, err := r.snapshotAt(ctx, txid); err != nil || info != nil {
		return info, err
	}
	hdr := ltx.Header{
		Version:   ltx.Version,
		PageSize:  r.pageSize,
		Commit:    view.commit,
		MinTXID:   1,
		MaxTXID:   txid,
		Timestamp: ts.UnixMilli(), // the commit time of txid: restore-by-time stays honest
	}
	if !r.opts.Checksums || post == 0 {
		hdr.Flags |= ltx.HeaderFlagNoChecksum
	}
	pr, pw := io.Pipe()
	hint := r.newHint(storage.SnapshotLevel)
	go func() {
		w, finish := teeHint(hint, pw)
		err := encodeView(ctx, w, hdr, view, post)
		finish(err)
		pw.CloseWithError(err)
	}()
	info, err := r.client.WriteLTXFile(ctx, storage.SnapshotLevel, 1, txid, pr)
	pr.CloseWithError(errors.New("upload ended"))
	if err != nil {
		r.unsure()
		return nil, fmt.Errorf("snapshot %s at TXID %s: %w", r.path, txid, err)
	}
	h, hintSize := r.writeHint(ctx, hint)
	r.describeWritten(ctx, info, h, hintSize)
	r.m.snapshots.Inc()
	r.m.uploadedBytes.Add(float64(info.Size))
	r.log.Info("snapshot written", "file", storage.FileName(storage.SnapshotLevel, 1, txid), "bytes", info.Size)
	return info, r.publish(ctx)
}

// encodeView encodes every page of view as the file described by hdr, and
// fails before the trailer unless the pages have the checksum want (when
// the writer knows it, whether or not the file carries it).
func encodeView(ctx context.Context, w io.Writer, hdr ltx.Header, view *dbView, want ltx.Checksum) error {
	enc, err := ltx.NewEncoder(w)
	if err != nil {
		return err
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		return err
	}
	var sum ltx.Checksum
	if err := view.forEach(ctx, func(pgno uint32, data []byte) error {
		sum ^= ltx.ChecksumPage(pgno, data)
		return enc.EncodePage(ltx.PageHeader{Pgno: pgno}, data)
	}); err != nil {
		return err
	}
	if want != 0 {
		if got := ltx.ChecksumFlag | sum; got != want {
			return fmt.Errorf("snapshot read a database with checksum %s, the replica has %s at TXID %s", got, want, hdr.MaxTXID)
		}
		if !hdr.NoChecksum() {
			enc.SetPostApplyChecksum(want)
		}
	}
	return enc.Close()
}

// snapshotAt is the snapshot of the replica that ends at txid, or nil.
func (r *Replicator) snapshotAt(ctx context.Context, txid ltx.TXID) (*ltx.FileInfo, error) {
	infos, err := storage.ListLevel(ctx, r.client, storage.SnapshotLevel, 0, false)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: list L%d of %s: %w", r.path, storage.SnapshotLevel, r.client, err)
	}
	for _, info := range infos {
		if info.MaxTXID == txid {
			r.log.Debug("snapshot exists already", "file", storage.FileName(info.Level, info.MinTXID, info.MaxTXID))
			return info, nil
		}
	}
	return nil, nil
}

// newestSnapshotTime is when the newest snapshot was written (zero if
// none).
func (r *Replicator) newestSnapshotTime(ctx context.Context) (time.Time, error) {
	infos, err := storage.ListLevel(ctx, r.client, storage.SnapshotLevel, 0, false)
	if err != nil {
		return time.Time{}, err
	}
	var t time.Time
	for _, info := range infos {
		if info.CreatedAt.After(t) {
			t = info.CreatedAt
		}
	}
	return t, nil
}
