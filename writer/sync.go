package writer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/superfly/ltx"
)

// errDatabaseReplaced: the file at the database path is no longer the one
// the writer opened.
var errDatabaseReplaced = errors.New("database file replaced while replicating")

// syncLocked copies the committed transactions of the WAL that are not yet
// in the replica into one L0 file at the next TXID and uploads it (see
// copyWALLocked), then publishes the manifest if the replica changed (or
// the last publish failed).
func (r *Replicator) syncLocked(ctx context.Context) error {
	if r.cs == nil {
		return ErrClosed
	}
	if err := r.Err(); err != nil {
		return err // stopped: nothing more goes to the replica
	}
	// A sync under way counts in the lag from its start to its end, its
	// manifest included (readers that follow the manifest see no further).
	r.syncStartedAt = time.Now()
	r.syncStart.Store(r.syncStartedAt.UnixNano())
	defer r.syncStart.Store(0)
	if err := r.checkReplicaKept(ctx); err != nil {
		r.behind.Store(true)
		return err
	}
	err := r.copyWALLocked(ctx)
	if err != nil {
		r.behind.Store(true) // it cannot tell what it missed
		r.noteMissingBucket(err)
	}
	if isFatal(err) {
		return err
	}
	if perr := r.publish(ctx); perr != nil {
		r.noteMissingBucket(perr)
		return perr
	}
	return err
}

// copyWALLocked copies the committed transactions of the WAL that are not
// yet in the replica into one L0 file at the next TXID and uploads it. On
// any doubt about the WAL's continuity it compares the database with the
// replica and, if they differ, writes a snapshot at the next TXID instead.
func (r *Replicator) copyWALLocked(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { r.m.observeSync(time.Since(start), err) }()

	if r.pending != nil {
		if err := r.uploadPending(ctx); err != nil {
			return err
		}
	}
	if err := r.checkDatabaseFile(); err != nil {
		return err
	}
	if !r.guard.held {
		// Reading the database file is only safe under the read
		// transaction (see dbView); a failed checkpoint may have left
		// the writer without it.
		if err := r.beginReadLocked(true); err != nil {
			return err
		}
	}
	if r.replica == nil {
		rp, err := r.readReplicaPos(ctx)
		if err != nil {
			return err
		}
		r.adoptSidecar(rp)
		r.replica = rp
		r.st.txid, r.st.post, r.st.commit, r.st.timestamp = rp.txid, rp.post, rp.commit, rp.timestamp
		r.publishPos()
	}

	hdr, hasHdr, wal, err := r.openWAL()
	if err != nil {
		return err
	}
	if wal != nil {
		defer wal.Close()
	}
	if fi, err := os.Stat(r.walPath); err == nil {
		r.m.walBytes.Set(float64(fi.Size()))
	}

	if !r.st.resumed {
		return r.resumeLocked(ctx, wal, hdr, hasHdr)
	}

	switch {
	case !hasHdr:
		// The WAL is empty: truncated by a checkpoint, or never written.
		if r.st.hasGen {
			if !r.guard.mayRestart(&r.st) {
				return r.doubtLocked(ctx, nil, hdr, false, "the WAL was truncated before the writer had copied all of it")
			}
			r.log.Debug("WAL truncated after everything was copied")
			r.st.hasGen, r.st.gen = false, nil
			r.guard.restartSeen, r.guard.fresh = true, true
		}
		r.setCaughtUp()
		return nil

	case !r.st.hasGen:
		if !r.guard.fresh {
			return r.doubtLocked(ctx, wal, hdr, true, "a WAL generation began that the writer cannot tie to the replica")
		}
		r.guard.fresh, r.guard.restartSeen = false, true
		r.st.pos, r.st.hasGen, r.st.gen = hdr.start(), true, map[uint32]frameRef{}

	case !r.st.pos.sameGeneration(hdr):
		if !r.guard.mayRestart(&r.st) {
			return r.doubtLocked(ctx, wal, hdr, true, "the WAL was restarted before the writer had copied all of it")
		}
		r.log.Debug("WAL restarted after everything was copied", "salt1", hdr.salt1, "salt2", hdr.salt2)
		r.guard.restartSeen = true
		r.st.pos, r.st.gen = hdr.start(), map[uint32]frameRef{}

	case r.st.pos.offset > walHeaderSize:
		// The last frame copied must still end where it did, with the
		// checksum it had: else the WAL is not the one we were copying.
		if !frameEndsAt(wal, hdr, r.st.pos) {
			if now, err := readWALHeader(r.walPath); err != nil || now != hdr {
				// Restarted since the header was read: the next sync
				// looks again.
				return nil
			}
			return r.doubtLocked(ctx, wal, hdr, true, "the last WAL frame copied is no longer in the WAL")
		}
	}

	scan, _, err := scanWAL(wal, hdr, r.st.pos, 0)
	if err != nil {
		return fmt.Errorf("read WAL %s: %w", r.walPath, err)
	}
	if scan.frames == 0 {
		r.setCaughtUp()
		return nil
	}
	return r.writeIncrementLocked(ctx, wal, hdr, scan, nil)
}

// openWAL reads the WAL header and opens the WAL for reading.
func (r *Replicator) openWAL() (hdr walHeader, hasHdr bool, wal *os.File, err error) {
	hdr, err = readWALHeader(r.walPath)
	if errors.Is(err, errNoWALHeader) {
		return walHeader{}, false, nil, nil
	} else if err != nil {
		return walHeader{}, false, nil, err
	}
	if hdr.pageSize != r.pageSize {
		return walHeader{}, false, nil, fmt.Errorf("WAL %s has page size %d, the database %d", r.walPath, hdr.pageSize, r.pageSize)
	}
	wal, err = os.Open(r.walPath)
	if err != nil {
		return walHeader{}, false, nil, fmt.Errorf("open WAL: %w", err)
	}
	return hdr, true, wal, nil
}

// checkDatabaseFile fails if the database path now names another file:
// copying that file's WAL would mix two databases in one replica.
func (r *Replicator) checkDatabaseFile() error {
	fi, err := os.Stat(r.path)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errDatabaseReplaced, r.path, err)
	}
	ofi, err := r.dbFile.Stat()
	if err != nil {
		return fmt.Errorf("stat database %s: %w", r.path, err)
	}
	if !os.SameFile(fi, ofi) {
		return fmt.Errorf("%w: %s (restart the writer to replicate the new file)", errDatabaseReplaced, r.path)
	}
	return nil
}

// frameEndsAt reports whether the frame that ends at pos is still in the
// WAL, with pos's salts and checksum.
func frameEndsAt(wal *os.File, hdr walHeader, pos walPos) bool {
	b := make([]byte, 16)
	if _, err := wal.ReadAt(b, pos.offset-int64(hdr.pageSize)-walFrameHeaderSize+8); err != nil {
		return false
	}
	return be32(b[0:]) == hdr.salt1 && be32(b[4:]) == hdr.salt2 && be32(b[8:]) == pos.s0 && be32(b[12:]) == pos.s1
}

// writeIncrementLocked writes the frames found by scan as the L0 file of
// the next TXID. sums, if given, are the per-page checksums of the whole
// database after scan (computed when the writer has just opened);
// otherwise they are updated from the pages that changed.
func (r *Replicator) writeIncrementLocked(ctx context.Context, wal *os.File, hdr walHeader, scan walScan, sums []ltx.Checksum) error {
	if !coversGrowth(scan, r.st.commit, r.pageSize) {
		// SQLite writes every page it adds to the database; a page missing
		// here would be missing from the replica.
		return r.doubtLocked(ctx, wal, hdr, true, "the WAL grows the database without holding its new pages")
	}
	commit := scan.commit
	pgnos := slices.Sorted(maps.Keys(scan.pages))
	lock := ltx.LockPgno(r.pageSize)

	txid := r.st.txid + 1
	header := ltx.Header{
		Version:          ltx.Version,
		PageSize:         r.pageSize,
		Commit:           commit,
		MinTXID:          txid,
		MaxTXID:          txid,
		Timestamp:        time.Now().UnixMilli(),
		PreApplyChecksum: r.st.post,
		WALOffset:        r.st.pos.offset,
		WALSize:          scan.end.offset - r.st.pos.offset,
		WALSalt1:         hdr.salt1,
		WALSalt2:         hdr.salt2,
	}
	if !r.opts.Checksums || r.st.post == 0 {
		header.Flags |= ltx.HeaderFlagNoChecksum
		header.PreApplyChecksum = 0
	}

	// Per-page checksums after this file: only the pages it holds change,
	// and pages above the new size drop out.
	type change struct {
		pgno uint32
		sum  ltx.Checksum
	}
	var changes []change
	newSum := r.st.sum
	enc, err := r.newL0Encoder(header)
	if err != nil {
		return err
	}
	defer enc.discard()
	buf := make([]byte, walFrameHeaderSize+int(r.pageSize))
	for _, pgno := range pgnos {
		if pgno > commit || pgno == lock {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := readFrame(wal, hdr, scan.pages[pgno], buf)
		if err != nil {
			return err
		}
		if err := enc.page(pgno, data); err != nil {
			return err
		}
		c := ltx.ChecksumPage(pgno, data)
		if sums == nil {
			newSum ^= r.st.pageSum(pgno) ^ c
			changes = append(changes, change{pgno, c})
		}
	}
	if sums == nil {
		for pgno := commit + 1; pgno <= r.st.commit && int(pgno) <= len(r.st.sums); pgno++ {
			newSum ^= r.st.sums[pgno-1]
		}
	} else {
		newSum = 0
		for _, c := range sums {
			newSum ^= c
		}
	}
	post := ltx.ChecksumFlag | newSum
	p, err := enc.finish(post)
	if err != nil {
		return err
	}
	p.apply = func(st *state) {
		if sums != nil {
			st.setSums(sums)
		} else {
			if int(commit) > len(st.sums) {
				st.sums = slices.Grow(st.sums, int(commit)-len(st.sums))[:commit]
			}
			for _, c := range changes {
				st.sums[c.pgno-1] = c.sum
			}
			for pgno := commit + 1; int(pgno) <= len(st.sums); pgno++ {
				st.sums[pgno-1] = 0
			}
			st.sum = newSum
		}
		st.post = post
		st.commit = commit
		st.pos = scan.end
		st.hasGen = true
		if st.gen == nil {
			st.gen = map[uint32]frameRef{}
		}
		maps.Copy(st.gen, scan.pages)
	}
	r.pending = p
	return r.uploadPending(ctx)
}

// pageSum is the checksum of a page at st.txid (0 if it did not exist).
func (st *state) pageSum(pgno uint32) ltx.Checksum {
	if int(pgno) > len(st.sums) {
		return 0
	}
	return st.sums[pgno-1]
}

// publishPos makes the state's position visible to Pos.
func (r *Replicator) publishPos() {
	pos := ltx.Pos{TXID: r.st.txid, PostApplyChecksum: r.st.post}
	r.pos.Store(&pos)
	r.m.txid.Set(float64(r.st.txid))
}

// setCaughtUp records that the replica holds everything in the WAL when
// the sync under way began (its scans of the WAL came after).
func (r *Replicator) setCaughtUp() {
	r.heldAsOf.Store(r.syncStartedAt.UnixNano())
	r.caughtUps.Add(1)
	r.behind.Store(false)
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
