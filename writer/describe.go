package writer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/storage"
)

// describeConcurrency bounds the reads of describeReplica.
const describeConcurrency = 8

// errUndescribable: a file that cannot be described (damaged, or in a
// format hints cannot follow); plans skip it.
var errUndescribable = errors.New("cannot describe")

// describeReplica fills the descriptions from the replica as it is now:
// the manifest found there (its ETag and seq, which this writer continues,
// and its descriptions of files still listed), and the files of the
// newest plan not described yet. Called under pub.mu.
func (r *Replicator) describeReplica(ctx context.Context) error {
	p := &r.pub
	b, info, err := storage.ReadAllObject(ctx, r.client, manifest.Name, storage.ReadOptions{}, manifest.MaxSize)
	var found *manifest.Manifest
	switch {
	case errors.Is(err, os.ErrNotExist):
		p.etag = ""
	case err != nil:
		return fmt.Errorf("read the manifest of %s: %w", r.client, err)
	default:
		p.etag = info.ETag
		if found, err = manifest.Decode(b); err != nil {
			r.log.Warn("manifest: the replica's manifest is not valid; replacing it", "replica", r.client.String(), "err", err)
		} else {
			p.seq = max(p.seq, found.Seq)
			p.history = found.History
		}
	}
	if p.history == "" {
		// No manifest names the history: this writer begins one (a
		// replica begun again has lost the manifest with its files).
		p.history = newHistory()
	}
	all, err := storage.ListAll(ctx, r.client, false)
	if err != nil {
		return err
	}
	hintList, err := r.client.ListObjects(ctx, manifest.HintDir)
	if err != nil {
		return fmt.Errorf("list the hints of %s: %w", r.client, err)
	}
	hints := map[fileKey][]storage.ObjectInfo{}
	for _, h := range hintList {
		if src, err := manifest.ParseHintName(h.Name); err == nil {
			k := fileKey{src.Level, src.MinTXID, src.MaxTXID}
			hints[k] = append(hints[k], h)
		}
	}
	listed := make(map[fileKey]*ltx.FileInfo, len(all))
	for _, f := range all {
		listed[keyOfInfo(f)] = f
	}
	// What was deleted (by hand) is forgotten; the manifest's
	// descriptions of files still there are taken as they are.
	for k, f := range p.files {
		if l := listed[k]; l == nil || l.Size != f.Size {
			delete(p.files, k)
		}
	}
	if found != nil {
		for _, f := range found.Files {
			k := keyOfFile(f)
			if _, ok := p.files[k]; !ok && listed[k] != nil && listed[k].Size == f.Size {
				p.files[k] = f
			}
		}
	}

	planned, err := plan.Restore(all, 0)
	if errors.Is(err, plan.ErrNoFiles) || errors.Is(err, plan.ErrTXIDUnavailable) {
		planned = nil // nothing to describe: the files to come will be
	} else if err != nil {
		return err
	}
	var todo []*ltx.FileInfo
	for _, info := range planned {
		if _, ok := p.files[keyOfInfo(info)]; !ok {
			todo = append(todo, info)
		}
	}
	described := make([]*manifest.File, len(todo))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(describeConcurrency)
	for i, info := range todo {
		g.Go(func() error {
			f, err := r.describeFile(gctx, info, hints[keyOfInfo(info)])
			switch {
			case errors.Is(err, os.ErrNotExist):
				return nil // deleted since the listing
			case errors.Is(err, errUndescribable):
				r.log.Warn("manifest: a file of the newest plan cannot be described; plans skip it", "err", err)
				return nil
			case err != nil:
				return err
			}
			described[i] = &f
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, f := range described {
		if f != nil {
			p.files[keyOfFile(*f)] = *f
		}
	}
	p.current, p.ready, p.changed = found, true, true
	if found != nil {
		r.m.manifestTXID.Set(float64(found.TXID))
	}
	return nil
}

// describeFile describes a listed file: a small one from its bytes, a
// larger one from its hint (one of hints, the hint objects listed under
// its level and TXIDs), else from its header and trailer.
func (r *Replicator) describeFile(ctx context.Context, info *ltx.FileInfo, hints []storage.ObjectInfo) (manifest.File, error) {
	name := storage.FileName(info.Level, info.MinTXID, info.MaxTXID)
	src := manifest.Source{Level: info.Level, MinTXID: info.MinTXID, MaxTXID: info.MaxTXID, Size: info.Size}
	if info.Size <= manifest.WholeFileMax {
		rc, err := r.client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
		if err != nil {
			return manifest.File{}, fmt.Errorf("read %s: %w", name, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(storage.ContextReader(ctx, rc), manifest.WholeFileMax+1))
		if err != nil {
			return manifest.File{}, fmt.Errorf("read %s: %w", name, err)
		}
		if int64(len(b)) != info.Size {
			return manifest.File{}, fmt.Errorf("read %s: %d of its %d bytes: %w", name, len(b), info.Size, io.ErrUnexpectedEOF)
		}
		h, err := manifest.BuildHint(info.Level, bytes.NewReader(b))
		if err == nil {
			err = h.Describes(src)
		}
		if err != nil {
			return manifest.File{}, fmt.Errorf("%w %s: %w", errUndescribable, name, err)
		}
		return manifest.FileOf(h, 0), nil
	}
	if len(hints) == 1 {
		// A name has one content: the hint of this file, unless another
		// writer wrote another file under the same TXIDs.
		b, _, err := storage.ReadAllObject(ctx, r.client, hints[0].Name, storage.ReadOptions{}, hints[0].Size)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return manifest.File{}, fmt.Errorf("read hint %s: %w", hints[0].Name, err)
		}
		if err == nil {
			h, err := manifest.DecodeHint(b)
			if err == nil {
				err = h.Describes(src)
			}
			if err == nil {
				return manifest.FileOf(h, int64(len(b))), nil
			}
			r.log.Warn("manifest: a hint does not describe its file; describing the file from its header and trailer", "hint", hints[0].Name, "err", err)
		}
	}
	hdr, trailer, err := r.readHeaderTrailer(ctx, info)
	if errors.Is(err, errNotLTX) {
		return manifest.File{}, fmt.Errorf("%w %s: %w", errUndescribable, name, err)
	} else if err != nil {
		return manifest.File{}, err
	}
	if hdr.MinTXID != info.MinTXID || hdr.MaxTXID != info.MaxTXID {
		return manifest.File{}, fmt.Errorf("%w %s: its header says TXIDs %s-%s", errUndescribable, name, hdr.MinTXID, hdr.MaxTXID)
	}
	f := fileOfHeader(info.Level, hdr, info.Size, trailer.FileChecksum)
	src.FileChecksum = trailer.FileChecksum
	for _, h := range hints {
		if manifest.HintName(src) == h.Name {
			f.HintSize = h.Size // the reader checks it, and reads the file if it must
		}
	}
	return f, nil
}

// fileOfHeader describes a file larger than manifest.WholeFileMax without
// its hint: readers read its page index from the file.
func fileOfHeader(level int, hdr ltx.Header, size int64, checksum ltx.Checksum) manifest.File {
	return manifest.File{
		Level:    level,
		MinTXID:  hdr.MinTXID,
		MaxTXID:  hdr.MaxTXID,
		Size:     size,
		Checksum: checksum,
		Created:  time.UnixMilli(hdr.Timestamp).UTC(),
	}
}

// newHistory is a random name for a replica's history (16 hex digits).
func newHistory() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
