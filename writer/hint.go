package writer

import (
	"bytes"
	"context"
	"io"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// hintPages collects the B-tree interior pages of a snapshot or compaction
// file as it is written, for the file's hint object (see
// storage.HintLevel): a reader fetches them in one request at open instead
// of one request per page on its first lookups. A nil *hintPages collects
// nothing (Options.NoHints).
type hintPages struct {
	pages []storage.HintPage
	size  int64
	over  bool // more than storage.MaxHintPageBytes: no hint

	hdr ltx.Header   // of the file written
	sum ltx.Checksum // its file checksum, once written
}

// newHint returns a collector, or nil when hints are off.
func (r *Replicator) newHint() *hintPages {
	if r.opts.NoHints {
		return nil
	}
	return &hintPages{}
}

// add keeps a copy of a page of the file if it is an interior page.
func (h *hintPages) add(pgno uint32, data []byte) {
	if h == nil || h.over || !storage.IsInteriorPage(pgno, data) {
		return
	}
	if h.size+int64(len(data)) > storage.MaxHintPageBytes {
		h.over, h.pages = true, nil
		return
	}
	h.pages = append(h.pages, storage.HintPage{Pgno: pgno, Data: bytes.Clone(data)})
	h.size += int64(len(data))
}

// written records the header and file checksum of the file once encoded.
func (h *hintPages) written(hdr ltx.Header, sum ltx.Checksum) {
	if h != nil {
		h.hdr, h.sum = hdr, sum
	}
}

// tee returns a writer that passes a file's bytes to w and decodes them on
// the way with ltx, collecting the interior pages and the file checksum;
// finish, called once the file is written (with its error, if any), waits
// for the decoding. The decoding never holds the file up: if it fails, it
// drains the rest, and the file simply gets no hint.
func (h *hintPages) tee(w io.Writer) (io.Writer, func(error)) {
	if h == nil {
		return w, func(error) {}
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer io.Copy(io.Discard, pr) //nolint:errcheck // drain: the writer must never block
		dec := ltx.NewDecoder(pr)
		dec.SetRetainPageIndex(false)
		if dec.DecodeHeader() != nil {
			h.over = true
			return
		}
		data := make([]byte, dec.Header().PageSize)
		for {
			var ph ltx.PageHeader
			err := dec.DecodePage(&ph, data)
			if err == io.EOF {
				break
			} else if err != nil {
				h.over = true
				return
			}
			h.add(ph.Pgno, data)
		}
		if dec.Close() != nil {
			h.over = true
			return
		}
		h.written(dec.Header(), dec.Trailer().FileChecksum)
	}()
	return io.MultiWriter(w, pw), func(err error) {
		if err == nil {
			err = io.EOF
		}
		pw.CloseWithError(err)
		<-done
	}
}

// writeHint uploads the hint of the file just written at level, when it
// holds interior pages. A hint is an optimization: failing to write one is
// logged and fails nothing. A compaction that ends where a snapshot ends
// gets no hint, so as not to replace the snapshot's, which readers plan
// with.
func (r *Replicator) writeHint(ctx context.Context, level int, h *hintPages) {
	if h == nil || h.over || len(h.pages) == 0 || h.sum == 0 || h.hdr.MaxTXID < 2 {
		return
	}
	txid := h.hdr.MaxTXID
	name := storage.FileName(storage.HintLevel, txid, txid)
	if level < storage.SnapshotLevel {
		snaps, err := storage.ListLevel(ctx, r.client, storage.SnapshotLevel, 0, false)
		if err != nil {
			r.log.Warn("hint not written", "file", name, "err", err)
			return
		}
		for _, s := range snaps {
			if s.MaxTXID == txid {
				return
			}
		}
	}
	var buf bytes.Buffer
	if err := storage.EncodeHint(&buf, h.hdr, h.sum, h.pages); err != nil {
		r.log.Warn("hint not written", "file", name, "err", err)
		return
	}
	err := retry(ctx, func() error {
		_, err := r.client.WriteLTXFile(ctx, storage.HintLevel, txid, txid, bytes.NewReader(buf.Bytes()))
		return err
	})
	if err != nil {
		r.log.Warn("hint not written", "file", name, "err", err)
		return
	}
	r.log.Debug("hint written", "file", name, "pages", len(h.pages), "bytes", buf.Len())
}

// staleHints lists the hints whose file is gone once del is deleted: no
// file of levels 1..9 left ends at their TXID.
func (r *Replicator) staleHints(ctx context.Context, levels [][]*ltx.FileInfo, del []*ltx.FileInfo) ([]*ltx.FileInfo, error) {
	hints, err := storage.ListLevel(ctx, r.client, storage.HintLevel, 0, false)
	if err != nil || len(hints) == 0 {
		return nil, err
	}
	gone := map[[3]ltx.TXID]bool{}
	for _, f := range del {
		gone[[3]ltx.TXID{ltx.TXID(f.Level), f.MinTXID, f.MaxTXID}] = true
	}
	ends := map[ltx.TXID]bool{}
	for level := 1; level < len(levels); level++ {
		for _, f := range levels[level] {
			if !gone[[3]ltx.TXID{ltx.TXID(f.Level), f.MinTXID, f.MaxTXID}] {
				ends[f.MaxTXID] = true
			}
		}
	}
	var stale []*ltx.FileInfo
	for _, h := range hints {
		if !ends[h.MaxTXID] {
			stale = append(stale, h)
		}
	}
	return stale, nil
}
