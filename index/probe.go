package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// maxProbeSize bounds what a probe reads: an L0 file holds one sync's
// pages and is usually small. A larger one is left to Update, which reads
// only its header and page index.
const maxProbeSize = 4 << 20

// probedKey identifies a file as a listing shows it, without CreatedAt,
// which a probe cannot learn.
type probedKey struct {
	level    int
	min, max ltx.TXID
	size     int64
}

// Probe looks for the file that a writer makes next, the L0 file
// [T+1, T+1] after the latest version's TXID T, by reading it whole: one
// request and one round trip per new TXID, where Update lists every level.
// It returns the new latest version and true when the file exists and
// continues the latest version; the latest version and false when there is
// no such file (nothing new yet; or the replica moved on in a way only a
// listing shows: a snapshot, a gap, a file too large to probe). Any error
// means the caller should Update.
//
// Probe needs a latest version (an Update first). It never lists, so it
// cannot notice compactions, snapshots or retention: the caller lists
// every so often.
func (x *Index) Probe(ctx context.Context) (*Version, bool, error) {
	select {
	case x.updating <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	defer func() { <-x.updating }()

	cur := x.Latest()
	if cur == nil {
		return nil, false, errors.New("probe before the first update")
	}
	if !x.relatable() {
		// The next L0 file may be another history's: only a fresh build
		// (Update) may take it in.
		return cur, false, fmt.Errorf("probe of %s: its manifest is gone (the replica may have been begun again): update instead", x.client)
	}
	txid := cur.TXID() + 1
	name := storage.FileName(0, txid, txid)
	body, err := x.readWhole(ctx, txid)
	if errors.Is(err, os.ErrNotExist) {
		return cur, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("probe %s of %s: %w", name, x.client, err)
	}
	fx, err := parseWhole(ctx, txid, body)
	if err != nil {
		return nil, false, fmt.Errorf("probe %s of %s: %w", name, x.client, err)
	}
	v, err := cur.extendWith(fx)
	if err != nil {
		return nil, false, fmt.Errorf("probe %s of %s: %w", name, x.client, err)
	}
	if known := x.cat.add(fx); known != fx {
		// Known already (a listing read it meanwhile): one *File per file.
		fx = known
		if v, err = cur.extendWith(fx); err != nil {
			return nil, false, fmt.Errorf("probe %s of %s: %w", name, x.client, err)
		}
	}
	// The file's pages came with it: a follower reading the new rows
	// finds them in the page cache.
	x.cat.deliver(v, []*fileIndex{fx})
	x.mu.Lock()
	x.probed[probedKey{0, txid, txid, fx.file.Info.Size}] = &fx.file.Info
	x.mu.Unlock()
	x.latest.Store(v)
	return v, true, nil
}

// errTooLarge: a probed file is larger than maxProbeSize.
var errTooLarge = errors.New("file is larger than a probe reads")

// readWhole reads the L0 file [txid, txid] whole, with one request.
func (x *Index) readWhole(ctx context.Context, txid ltx.TXID) ([]byte, error) {
	rc, err := x.client.OpenLTXFile(ctx, 0, txid, txid, 0, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, maxProbeSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxProbeSize {
		return nil, errTooLarge
	}
	return body, nil
}

// parseWhole reads the page index of a whole file read without a
// listing; fetchFileIndex checks it against its file checksum first (an
// open-ended read that ended early looks like a whole file otherwise).
func parseWhole(ctx context.Context, txid ltx.TXID, body []byte) (*fileIndex, error) {
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(body); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ltx.ErrInvalidFile, err)
	}
	info := &ltx.FileInfo{Level: 0, MinTXID: txid, MaxTXID: txid, Size: int64(len(body)), CreatedAt: time.UnixMilli(hdr.Timestamp).UTC()}
	// fetchFileIndex parses what it reads through a client: giving it the
	// body already read keeps one parser (and its checks) for both paths.
	return fetchFileIndex(ctx, bodyClient(body), make(chan struct{}, 2), info, hintRequest{})
}

// extendWith returns the version that follows v with fx, which must start
// right after v's TXID, in the state v left the database.
func (v *Version) extendWith(fx *fileIndex) (*Version, error) {
	f := fx.file
	if f.Info.MinTXID != v.txid+1 {
		return nil, fmt.Errorf("%s does not follow TXID %s", f.Name(), v.txid)
	}
	if err := checkPageSizes(v.pageSize, []*fileIndex{fx}); err != nil {
		return nil, err
	}
	if err := checkContinues(v.last, f); err != nil {
		return nil, err
	}
	b := newMapBuilder(v.pages)
	applyNewer(b, fx)
	return finish(b, v.pageSize, f, append(slices.Clip(v.plan), f)), nil
}

// asProbed returns infos with the files that Probe found as Probe saw
// them, so that the catalog and the versions know them under one key
// whatever CreatedAt the listing gives. With prune, probed files the
// listing no longer holds are forgotten.
func (x *Index) asProbed(infos []*ltx.FileInfo, prune bool) []*ltx.FileInfo {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.probed) == 0 {
		return infos
	}
	out := slices.Clone(infos)
	seen := map[probedKey]bool{}
	for i, info := range out {
		if info.Level != 0 {
			continue
		}
		k := probedKey{info.Level, info.MinTXID, info.MaxTXID, info.Size}
		if p, ok := x.probed[k]; ok {
			out[i] = p
			seen[k] = true
		}
	}
	if prune {
		for k := range x.probed {
			if !seen[k] {
				delete(x.probed, k)
			}
		}
	}
	return out
}

// bodyClient serves the ranged reads of one file already in memory.
type bodyClient []byte

func (b bodyClient) OpenLTXFile(_ context.Context, _ int, _, _ ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	if offset < 0 || offset >= int64(len(b)) || size < 0 || offset+size > int64(len(b)) {
		return nil, fmt.Errorf("read bytes %d-%d of a %d-byte file: %w", offset, offset+size, len(b), io.ErrUnexpectedEOF)
	}
	if size == 0 {
		size = int64(len(b)) - offset
	}
	return io.NopCloser(bytes.NewReader(b[offset : offset+size])), nil
}

func (b bodyClient) LTXFiles(context.Context, int, ltx.TXID, bool) (ltx.FileIterator, error) {
	return nil, errors.ErrUnsupported
}

func (b bodyClient) WriteLTXFile(context.Context, int, ltx.TXID, ltx.TXID, io.Reader) (*ltx.FileInfo, error) {
	return nil, errors.ErrUnsupported
}

func (b bodyClient) DeleteLTXFiles(context.Context, []*ltx.FileInfo) error {
	return errors.ErrUnsupported
}

func (b bodyClient) DeleteAll(context.Context) error { return errors.ErrUnsupported }

func (b bodyClient) ReadObject(context.Context, string, storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	return nil, storage.ObjectInfo{}, errors.ErrUnsupported
}

func (b bodyClient) WriteObject(context.Context, string, io.Reader, storage.WriteOptions) (storage.ObjectInfo, error) {
	return storage.ObjectInfo{}, errors.ErrUnsupported
}

func (b bodyClient) ListObjects(context.Context, string) ([]storage.ObjectInfo, error) {
	return nil, errors.ErrUnsupported
}

func (b bodyClient) DeleteObjects(context.Context, []string) error { return errors.ErrUnsupported }

func (b bodyClient) String() string { return "a probed file" }
