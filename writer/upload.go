package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
)

// uploadPending uploads the pending L0 file and, once it is in the replica,
// applies its state change. On failure the file stays pending: the next
// sync retries the same bytes before copying anything new, and the WAL
// keeps the frames meanwhile (the read transaction stays).
func (r *Replicator) uploadPending(ctx context.Context) error {
	p := r.pending
	if p.heldAsOf.IsZero() {
		// Built by this sync, from what the WAL held when it began.
		p.heldAsOf = r.syncStartedAt
	}
	// Until it lands, the replica lacks the file's commits: the lag counts
	// from when it last held everything.
	r.behind.Store(true)
	name := storage.FileName(0, p.hdr.MinTXID, p.hdr.MaxTXID)
	landed, err := r.checkNextTXID(ctx, p)
	if err != nil {
		return err
	}
	// The hint goes before the file, so that a reader that lists the file
	// finds its hint too (after an upload that landed though it was
	// reported failed, it is there already, or is written now).
	h := r.l0Hint(p)
	var hintSize int64
	if h != nil {
		hintSize = r.writeHintOf(ctx, h)
	}
	if !landed {
		if _, err := r.client.WriteLTXFile(ctx, 0, p.hdr.MinTXID, p.hdr.MaxTXID, p.body.reader()); err != nil {
			return fmt.Errorf("upload %s to %s: %w", name, r.client, err)
		}
		r.m.uploadedBytes.Add(float64(p.body.size))
	}
	if !r.opts.NoManifest {
		if h != nil {
			r.describe(manifest.FileOf(h, hintSize))
		} else {
			r.describe(fileOfHeader(0, p.hdr, p.body.size, p.fileChecksum))
		}
	}
	p.body.close()
	r.pending = nil
	p.apply(&r.st)
	r.st.txid = p.hdr.MaxTXID
	r.st.timestamp = time.UnixMilli(p.hdr.Timestamp)
	r.st.resumed = true
	r.ckpt.syncedSinceCheckpoint = true
	r.saveSidecar(p)
	r.publishPos()
	// The replica holds what the WAL held when the file was built; a file
	// built by an earlier sync (retried) may leave later commits behind,
	// which this sync's scan finds next.
	r.heldAsOf.Store(p.heldAsOf.UnixNano())
	r.behind.Store(!p.heldAsOf.Equal(r.syncStartedAt))
	r.log.Debug("synced", "file", name, "commit", p.hdr.Commit, "bytes", p.body.size, "wal_offset", p.hdr.WALOffset, "wal_size", p.hdr.WALSize)
	return nil
}

// l0Hint builds the hint of a pending L0 file, when its hint object (a
// file larger than manifest.WholeFileMax) or the manifest (which carries a
// smaller file's page index inline) needs it; nil otherwise, or when it
// cannot be built (logged).
func (r *Replicator) l0Hint(p *pendingFile) *manifest.Hint {
	large := p.body.size > manifest.WholeFileMax
	if large && r.opts.NoHints || !large && r.opts.NoManifest {
		return nil
	}
	h, err := manifest.BuildHint(0, p.body.reader())
	if err != nil {
		r.log.Warn("hint not built", "file", storage.FileName(0, p.hdr.MinTXID, p.hdr.MaxTXID), "err", err)
		return nil
	}
	return h
}

// checkNextTXID looks for a file at or past the TXID about to be written,
// when no lease guarantees that this writer is alone. A file there is
// another writer's, unless it is this very file from an upload that landed
// though it was reported failed (then landed is true).
func (r *Replicator) checkNextTXID(ctx context.Context, p *pendingFile) (landed bool, err error) {
	if r.lease != nil {
		return false, nil
	}
	infos, err := storage.ListLevel(ctx, r.client, 0, p.hdr.MinTXID, false)
	if err != nil {
		return false, fmt.Errorf("list L0 of %s: %w", r.client, err)
	}
	for _, info := range infos {
		if info.MinTXID != p.hdr.MinTXID || info.MaxTXID != p.hdr.MaxTXID || info.Size != p.body.size {
			return false, fmt.Errorf("%w: %s holds %s, which this writer did not write (TXID %s was next)",
				ErrReplicaConflict, r.client, storage.FileName(0, info.MinTXID, info.MaxTXID), p.hdr.MinTXID)
		}
		same, err := r.sameHeader(ctx, info, p.body.headerBytes())
		if err != nil {
			return false, err
		}
		if !same {
			return false, fmt.Errorf("%w: %s holds %s, which this writer did not write", ErrReplicaConflict, r.client, storage.FileName(0, info.MinTXID, info.MaxTXID))
		}
		landed = true
	}
	return landed, nil
}

func (r *Replicator) sameHeader(ctx context.Context, info *ltx.FileInfo, want []byte) (bool, error) {
	rc, err := r.client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, ltx.HeaderSize)
	if err != nil {
		return false, fmt.Errorf("read header of %s: %w", storage.FileName(info.Level, info.MinTXID, info.MaxTXID), err)
	}
	defer rc.Close()
	got := make([]byte, ltx.HeaderSize)
	if _, err := io.ReadFull(rc, got); err != nil {
		return false, fmt.Errorf("read header of %s: %w", storage.FileName(info.Level, info.MinTXID, info.MaxTXID), err)
	}
	return bytes.Equal(got, want), nil
}

// replicaPos is the replica's newest position, read once when the writer
// starts.
type replicaPos struct {
	txid      ltx.TXID
	post      ltx.Checksum // the newest file's post-apply checksum; 0 if untracked
	commit    uint32
	timestamp time.Time
	last      *ltx.FileInfo // the newest L0 file, if it ends at txid
	lastHdr   ltx.Header

	fileChecksum ltx.Checksum // the trailer's CRC-64 of the file that ends at txid
}

// readReplicaPos finds the newest TXID in the replica and the file that
// ends there.
func (r *Replicator) readReplicaPos(ctx context.Context) (*replicaPos, error) {
	newest, err := r.newestFile(ctx)
	if err != nil {
		return nil, err
	}
	rp := &replicaPos{}
	if newest == nil {
		return rp, nil
	}
	hdr, trailer, err := r.readHeaderTrailer(ctx, newest)
	if err != nil {
		return nil, err
	}
	if hdr.PageSize != r.pageSize {
		return nil, fmt.Errorf("replica %s holds pages of %d bytes, the database %s %d: is it another database's replica?", r.client, hdr.PageSize, r.path, r.pageSize)
	}
	rp.txid, rp.commit, rp.timestamp = newest.MaxTXID, hdr.Commit, time.UnixMilli(hdr.Timestamp)
	rp.fileChecksum = trailer.FileChecksum
	if !hdr.NoChecksum() {
		rp.post = trailer.PostApplyChecksum
	}
	if newest.Level == 0 { // an L0 file ends at txid: L0 wins the ties
		rp.last, rp.lastHdr = newest, hdr
	}
	return rp, nil
}

// errNotLTX is wrapped by the errors of readHeaderTrailer that come from
// the bytes read, not from reading them.
var errNotLTX = errors.New("not a valid LTX file")

// readHeaderTrailer reads a file's header and trailer with two ranged
// reads.
func (r *Replicator) readHeaderTrailer(ctx context.Context, info *ltx.FileInfo) (ltx.Header, ltx.Trailer, error) {
	name := storage.FileName(info.Level, info.MinTXID, info.MaxTXID)
	if info.Size < ltx.HeaderSize+ltx.TrailerSize {
		return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("replica file %s is %d bytes, too short for an LTX file: %w", name, info.Size, errNotLTX)
	}
	read := func(off, n int64) ([]byte, error) {
		rc, err := r.client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, off, n)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b := make([]byte, n)
		_, err = io.ReadFull(rc, b)
		return b, err
	}
	hb, err := read(0, ltx.HeaderSize)
	if err != nil {
		return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("read header of %s: %w", name, err)
	}
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(hb); err != nil {
		return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("read header of %s: %w: %w", name, errNotLTX, err)
	}
	if err := hdr.Validate(); err != nil {
		return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("header of %s: %w: %w", name, errNotLTX, err)
	}
	tb, err := read(info.Size-ltx.TrailerSize, ltx.TrailerSize)
	if err != nil {
		return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("read trailer of %s: %w", name, err)
	}
	var trailer ltx.Trailer
	if err := trailer.UnmarshalBinary(tb); err != nil {
		return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("read trailer of %s: %w: %w", name, errNotLTX, err)
	}
	return hdr, trailer, nil
}
