package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// resumeLocked is the first sync after opening: it ties the database to
// the replica's newest TXID, in one of two ways, and otherwise writes a
// snapshot at the next TXID:
//
//  1. the WAL still holds the generation the newest L0 file was copied
//     from, intact up to the end of that file's frames, and the last of
//     those frames is the page the file holds (Litestream's check); the
//     frames after it are the next file;
//  2. the database file equals the replica at its newest TXID (same
//     rolling checksum) and every page the WAL adds is in the WAL: the
//     whole WAL generation is the next file.
func (r *Replicator) resumeLocked(ctx context.Context, wal *os.File, hdr walHeader, hasHdr bool) error {
	if r.st.txid == 0 {
		return r.snapshotL0Locked(ctx, wal, hdr, hasHdr, "the replica is empty")
	}
	reason, err := r.matchLastL0(ctx, wal, hdr, hasHdr)
	if err != nil {
		return err
	}
	if reason != "" {
		return r.doubtLocked(ctx, wal, hdr, hasHdr, reason)
	}

	// Position found: read the database whole once, for the per-page
	// checksums that later files update.
	scan, _, err := scanWAL(wal, hdr, r.st.pos, 0)
	if err != nil {
		return fmt.Errorf("read WAL %s: %w", r.walPath, err)
	}
	gen := maps2(r.st.gen, scan.pages)
	commit := scan.commit
	if scan.frames == 0 {
		commit = r.st.commit
	}
	view := &dbView{db: r.dbFile, wal: wal, hdr: hdr, gen: gen, commit: commit, pageSize: r.pageSize}
	sums, err := view.sums(ctx)
	if err != nil {
		return fmt.Errorf("read database %s: %w", r.path, err)
	}
	if scan.frames == 0 {
		if r.st.post != 0 && xorSums(sums) != r.st.post {
			return r.doubtLocked(ctx, wal, hdr, hasHdr, "the database differs from the replica at the same WAL position")
		}
		r.st.setSums(sums)
		r.st.resumed = true
		r.setCaughtUp()
		r.log.Info("resumed from the WAL position of the newest L0 file", "txid", r.st.txid, "wal_offset", r.st.pos.offset)
		return nil
	}
	r.log.Info("resumed from the WAL position of the newest L0 file", "txid", r.st.txid, "wal_offset", r.st.pos.offset, "new_frames", scan.frames)
	return r.writeIncrementLocked(ctx, wal, hdr, scan, sums)
}

// matchLastL0 tries way 1 of resumeLocked and sets the WAL position; it
// returns why it could not.
func (r *Replicator) matchLastL0(ctx context.Context, wal *os.File, hdr walHeader, hasHdr bool) (reason string, err error) {
	rp := r.replica
	switch {
	case rp.last == nil:
		return "the replica's newest TXID is not in an L0 file, so it records no WAL position", nil
	case rp.lastHdr.WALOffset == 0:
		return "the replica's newest L0 file records no WAL position", nil
	case !hasHdr:
		return "the WAL is empty", nil
	case rp.lastHdr.WALSalt1 != hdr.salt1 || rp.lastHdr.WALSalt2 != hdr.salt2:
		return "the WAL was restarted since the newest L0 file was written", nil
	}
	end := rp.lastHdr.WALOffset + rp.lastHdr.WALSize
	scan, ok, err := scanWAL(wal, hdr, hdr.start(), end)
	if err != nil {
		return "", fmt.Errorf("read WAL %s: %w", r.walPath, err)
	}
	if !ok {
		return fmt.Sprintf("the WAL does not hold a valid commit ending at offset %d, where the newest L0 file ended", end), nil
	}
	if rp.lastHdr.WALSize > 0 {
		match, err := r.lastPageMatches(ctx, wal, hdr, end)
		if err != nil {
			return "", err
		}
		if !match {
			return "the last WAL frame copied differs from the page in the newest L0 file", nil
		}
	}
	r.st.pos, r.st.hasGen, r.st.gen = scan.end, true, scan.pages
	return "", nil
}

// lastPageMatches compares the frame that ends at end with the same page in
// the replica's newest L0 file.
func (r *Replicator) lastPageMatches(ctx context.Context, wal *os.File, hdr walHeader, end int64) (bool, error) {
	frame := make([]byte, walFrameHeaderSize+int(r.pageSize))
	if _, err := wal.ReadAt(frame, end-int64(len(frame))); err != nil {
		return false, fmt.Errorf("read WAL %s: %w", r.walPath, err)
	}
	pgno := be32(frame)
	last := r.replica.last
	rc, err := r.client.OpenLTXFile(ctx, 0, last.MinTXID, last.MaxTXID, 0, 0)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", storage.FileName(0, last.MinTXID, last.MaxTXID), err)
	}
	defer rc.Close()
	dec := ltx.NewDecoder(rc)
	if err := dec.DecodeHeader(); err != nil {
		return false, fmt.Errorf("read %s: %w", storage.FileName(0, last.MinTXID, last.MaxTXID), err)
	}
	var ph ltx.PageHeader
	data := make([]byte, r.pageSize)
	for {
		if err := dec.DecodePage(&ph, data); errors.Is(err, io.EOF) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("read %s: %w", storage.FileName(0, last.MinTXID, last.MaxTXID), err)
		}
		if ph.Pgno == pgno {
			return bytes.Equal(data, frame[walFrameHeaderSize:]), nil
		}
	}
}

// doubtLocked handles a WAL that cannot be tied to what was copied. If the
// database file equals the replica at its newest TXID (same checksum) and
// the current WAL generation holds every page beyond the replica's size,
// the whole generation is the next file. Otherwise changes may have been
// missed, and the next file is a snapshot: every page, at the next TXID.
func (r *Replicator) doubtLocked(ctx context.Context, wal *os.File, hdr walHeader, hasHdr bool, reason string) error {
	r.m.lostWAL.Inc()
	var scan walScan
	if hasHdr {
		var err error
		if scan, _, err = scanWAL(wal, hdr, hdr.start(), 0); err != nil {
			return fmt.Errorf("read WAL %s: %w", r.walPath, err)
		}
	}
	if r.st.post != 0 && r.st.commit > 0 {
		view := &dbView{db: r.dbFile, commit: r.st.commit, pageSize: r.pageSize}
		dbSums, err := view.sums(ctx)
		if err != nil && !errors.Is(err, errShortDatabase) {
			return fmt.Errorf("read database %s: %w", r.path, err)
		}
		if err == nil && xorSums(dbSums) == r.st.post && coversGrowth(scan, r.st.commit, r.pageSize) {
			r.log.Info("WAL continuity lost, but the database file matches the replica; continuing", "reason", reason, "txid", r.st.txid)
			r.st.gen = nil
			if !hasHdr {
				r.st.hasGen = false
				r.st.setSums(dbSums)
				r.st.resumed = true
				r.guard.fresh = r.guard.valid
				r.setCaughtUp()
				return nil
			}
			r.st.pos, r.st.hasGen = hdr.start(), true
			if scan.frames == 0 {
				r.st.setSums(dbSums)
				r.st.resumed = true
				r.setCaughtUp()
				return nil
			}
			full := &dbView{db: r.dbFile, wal: wal, hdr: hdr, gen: scan.pages, commit: scan.commit, pageSize: r.pageSize}
			sums, err := full.sums(ctx)
			if err != nil {
				return fmt.Errorf("read database %s: %w", r.path, err)
			}
			return r.writeIncrementLocked(ctx, wal, hdr, scan, sums)
		}
	}
	return r.snapshotL0Locked(ctx, wal, hdr, hasHdr, reason)
}

// coversGrowth reports whether every page between the replica's size and
// the WAL's is in the WAL: those pages are not in the replica, so the WAL
// must bring them.
func coversGrowth(scan walScan, replicaCommit, pageSize uint32) bool {
	lock := ltx.LockPgno(pageSize)
	for pgno := replicaCommit + 1; pgno <= scan.commit; pgno++ {
		if _, ok := scan.pages[pgno]; !ok && pgno != lock {
			return false
		}
	}
	return true
}

// snapshotL0Locked writes every page of the database, as of the end of the
// WAL, as the L0 file of the next TXID (TXID 1 on an empty replica): the
// TXIDs stay contiguous and nothing is guessed.
func (r *Replicator) snapshotL0Locked(ctx context.Context, wal *os.File, hdr walHeader, hasHdr bool, reason string) error {
	var scan walScan
	view := &dbView{db: r.dbFile, pageSize: r.pageSize}
	if hasHdr {
		var err error
		if scan, _, err = scanWAL(wal, hdr, hdr.start(), 0); err != nil {
			return fmt.Errorf("read WAL %s: %w", r.walPath, err)
		}
		view.wal, view.hdr, view.gen, view.commit = wal, hdr, scan.pages, scan.commit
	}
	if view.commit == 0 {
		c, err := dbFileCommit(r.dbFile, r.pageSize)
		if err != nil {
			return fmt.Errorf("read database %s: %w", r.path, err)
		}
		view.commit = c
	}
	txid := r.st.txid + 1
	header := ltx.Header{
		Version:   ltx.Version,
		PageSize:  r.pageSize,
		Commit:    view.commit,
		MinTXID:   txid,
		MaxTXID:   txid,
		Timestamp: time.Now().UnixMilli(),
	}
	if txid > 1 {
		header.PreApplyChecksum = r.st.post
	}
	if !r.opts.Checksums || (txid > 1 && r.st.post == 0) {
		header.Flags |= ltx.HeaderFlagNoChecksum
		header.PreApplyChecksum = 0
	}
	if hasHdr {
		header.WALOffset, header.WALSize = walHeaderSize, scan.end.offset-walHeaderSize
		header.WALSalt1, header.WALSalt2 = hdr.salt1, hdr.salt2
	}
	r.log.Info("writing a snapshot as the next L0 file", "txid", txid, "reason", reason, "pages", view.commit)
	enc, err := r.newL0Encoder(header)
	if err != nil {
		return err
	}
	defer enc.discard()
	sums := make([]ltx.Checksum, view.commit)
	if err := view.forEach(ctx, func(pgno uint32, data []byte) error {
		sums[pgno-1] = ltx.ChecksumPage(pgno, data)
		return enc.page(pgno, data)
	}); err != nil {
		return fmt.Errorf("snapshot %s: %w", r.path, err)
	}
	post := xorSums(sums)
	p, err := enc.finish(post)
	if err != nil {
		return err
	}
	p.apply = func(st *state) {
		st.setSums(sums)
		st.post = post
		st.commit = view.commit
		st.hasGen = hasHdr
		st.gen = scan.pages
		if hasHdr {
			st.pos = scan.end
		}
	}
	if !hasHdr {
		// The snapshot read the database file with the WAL empty: under
		// the read transaction, the next generation begins after it.
		r.guard.fresh = r.guard.valid
	}
	r.pending = p
	r.m.snapshotsL0.Inc()
	return r.uploadPending(ctx)
}

// errShortDatabase: the database file ends before the size asked for.
var errShortDatabase = errors.New("database file shorter than the database")

func xorSums(sums []ltx.Checksum) ltx.Checksum {
	var s ltx.Checksum
	for _, c := range sums {
		s ^= c
	}
	return ltx.ChecksumFlag | s
}

// maps2 returns the union of two frame maps, b winning.
func maps2(a, b map[uint32]frameRef) map[uint32]frameRef {
	m := make(map[uint32]frameRef, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}
