package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync/atomic"

	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
)

// File is one LTX file that pages are read from: what the listing said of
// it, and its header and trailer as read from storage.
type File struct {
	Info    ltx.FileInfo // level, TXID range, size, CreatedAt (from listing)
	Header  ltx.Header   // page size, commit, timestamp (from the file)
	Trailer ltx.Trailer  // FileChecksum identifies the file's content

	// sums checks the frames read by range (see CheckFrame); nil for a
	// file read by range without a hint (Litestream's).
	sums *frameSums
}

// Hinted reports whether the file is read by range with its writer's hint
// (see manifest.Hint): its frames' checksums, and the copies of its B-tree
// interior pages handed to the FrameSink. A Litestream replica's files
// never are; nor are files small enough to be read whole.
func (f *File) Hinted() bool { return f.sums != nil && f.Info.Size > wholeRead }

// Name is "L<level>/<minTXID>-<maxTXID>.ltx", for errors and logs.
func (f *File) Name() string { return storage.FileName(f.Info.Level, f.Info.MinTXID, f.Info.MaxTXID) }

// An LTX file ends with [page index][8-byte big-endian index size][trailer];
// the page block before the index ends with an empty page header.
const (
	indexSizeLen = 8
	// minFileSize is a header, the end-of-pages marker, an empty index (its
	// end marker, one byte) with its size, and the trailer.
	minFileSize = ltx.HeaderSize + ltx.PageHeaderSize + 1 + indexSizeLen + ltx.TrailerSize
	// tailGuess is the least read from the end of a file in one request, in
	// the hope that it holds the whole page index (about 7 bytes a page:
	// ~9,000 pages).
	tailGuess = 64 << 10
	// wholeRead is the size up to which a file is read whole, in one
	// request rather than a head and a tail read: every byte of it is
	// then checked against its file checksum before any page is used, and
	// its frames against sums computed from it later. (Only its first
	// headBytes of frames go to the frame sink: the rest is read when
	// asked for.) 1 MiB is 10 ms of transfer at 100 MB/s, less than a
	// round trip.
	defaultWholeRead = 1 << 20
	// maxTailGuess bounds the tail read of a large file (see tailFor).
	maxTailGuess = 8 << 20
	// tailChunk is the most one request of a tail read asks for: a larger
	// tail is read in parallel chunks, so that reading more on a guess
	// costs requests, not time.
	tailChunk = 1 << 20
	// headBytes is read from the start of a larger file, with its header:
	// its first frames (page 1, the schema, the roots of the tables made
	// first) then come with the page index, in the same round trip, for
	// well under a millisecond of transfer.
	headBytes = 64 << 10
)

// wholeRead is defaultWholeRead; tests of the head and tail reads lower it
// so as not to need files of megabytes.
var wholeRead int64 = defaultWholeRead

// tailFor is how much to read from the end of a file of size bytes: 1/128
// of it, which holds the page index of pages that compress up to about 3x
// (an entry takes 7-10 bytes), and at least tailGuess. A larger index costs
// one more round trip. (With 1/256, a 1 GiB database whose pages LZ4
// halved had a snapshot whose index did not fit: every open took a third
// round trip.) The tail is read in parallel chunks (tailChunk), so the
// guess costs a few more requests, not more time.
func tailFor(size int64) int64 { return min(max(size/128, tailGuess), maxTailGuess) }

// fileKey identifies a listed file. A file rewritten under the same name
// (a replica deleted and started again) differs in size or CreatedAt, and
// its trailer checksum then tells the page cache apart.
type fileKey struct {
	level    int
	min, max ltx.TXID
	size     int64
	created  int64 // CreatedAt in Unix nanoseconds
}

func keyOf(info *ltx.FileInfo) fileKey {
	return fileKey{level: info.Level, min: info.MinTXID, max: info.MaxTXID, size: info.Size, created: info.CreatedAt.UnixNano()}
}

func (k fileKey) String() string {
	return fmt.Sprintf("%s/%d/%d", storage.FileName(k.level, k.min, k.max), k.size, k.created)
}

// fileIndex is the page index of one file: its page numbers in ascending
// order and the size of each page's frame. Frames lie back to back from the
// end of the header (the decoder reads them so, and this is checked), so
// offsets are not stored: 8 bytes a page.
type fileIndex struct {
	file  *File
	pgnos []uint32
	sizes []uint32

	// pending holds the frames read along with the index (the head of the
	// file, its hint) until a version built with the file hands them to the
	// frame sink; nil once handed over.
	pending atomic.Pointer[pendingFrames]
}

// invalidf reports a file that is not a well-formed LTX file; the error
// matches ltx.ErrInvalidFile.
func invalidf(info *ltx.FileInfo, format string, args ...any) error {
	return fmt.Errorf("read page index of %s: %w: %s", storage.FileName(info.Level, info.MinTXID, info.MaxTXID), ltx.ErrInvalidFile, fmt.Sprintf(format, args...))
}

// fetchFileIndex reads a file's header, trailer and page index from the
// file: one request for a small file, a head read and a tail read in
// parallel for a larger one, and one more read only when the index is
// larger than the tail read. The hints a listing showed for the file are
// read in the same round. The frames read (the whole small file, the head
// of a larger one, the hint's) are kept on the result for the frame sink.
//
// Everything read is treated as untrusted. A file read whole must match
// its file checksum before any page of it is used. A larger file whose
// hint describes exactly its header, trailer and page index has its
// frames checked against the hint's frame sums when read
// (File.CheckFrame); a hint that differs means the file is damaged. An
// index that does not describe exactly the file's page block is an error
// naming the file; a hint that does not decode is dropped with a warning,
// and the file read as if it had none.
func fetchFileIndex(ctx context.Context, client storage.Client, sem chan struct{}, info *ltx.FileInfo, hint hintRequest) (*fileIndex, error) {
	if info.Size < minFileSize {
		return nil, invalidf(info, "file is %d bytes, smaller than the smallest LTX file (%d bytes)", info.Size, minFileSize)
	}
	var h *manifest.Hint
	var hintErr error
	g, gctx := errgroup.WithContext(ctx)
	if len(hint.listed) > 0 && info.Size > manifest.WholeFileMax {
		g.Go(func() error {
			h, hintErr = readListedHint(gctx, client, sem, hint.cache, info, hint.listed)
			return nil // a hint is optional: its failure fails nothing
		})
	}
	var fx *fileIndex
	g.Go(func() (err error) {
		fx, err = readFileIndex(gctx, client, sem, info)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if h == nil && fx.file.sums == nil && hint.byName {
		// A hint written after the listing: by its name, now that the
		// file's checksum is known (one more round trip, rarely).
		var err error
		if h, err = readHint(ctx, client, sem, hint.cache, manifest.HintName(sourceOf(fx.file))); err != nil && !errors.Is(err, os.ErrNotExist) {
			hintErr = errors.Join(hintErr, err)
		}
	}
	p := fx.pending.Load()
	if h != nil {
		// Also for a file read whole: the hint's frames (its interior
		// pages) come with it.
		if err := fx.useHint(h); err != nil {
			return nil, err
		}
		p.hint = fx.hintFrames(h)
	}
	if hintErr != nil && ctx.Err() == nil {
		p.hintErr = fmt.Errorf("hint of %s: %w", fx.file.Name(), hintErr)
	}
	return fx, nil
}

// readFileIndex reads a file's header, trailer and page index from the
// file itself (see fetchFileIndex).
func readFileIndex(ctx context.Context, client storage.Client, sem chan struct{}, info *ltx.FileInfo) (*fileIndex, error) {
	size := info.Size
	var head, tail []byte
	tailStart := max(size-tailFor(size), 0)
	if size <= wholeRead {
		tailStart = 0
	}
	// Every read goes out at once: one round trip.
	g, gctx := errgroup.WithContext(ctx)
	if tailStart == 0 {
		g.Go(func() (err error) {
			tail, err = readRange(gctx, client, sem, info, 0, size)
			head = tail
			return err
		})
	} else {
		// At least the header, even where it reaches into the tail.
		headLen := min(max(min(headBytes, tailStart), ltx.HeaderSize), size)
		g.Go(func() (err error) {
			head, err = readRange(gctx, client, sem, info, 0, headLen)
			return err
		})
		g.Go(func() (err error) {
			tail, err = readChunked(gctx, client, sem, info, tailStart, size-tailStart)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if tailStart > 0 && int64(len(head)) >= tailStart {
		head = append(head[:tailStart:tailStart], tail...) // the whole file
		tail, tailStart = head, 0
	}
	whole := tailStart == 0
	if whole {
		// Nothing of a file read whole is used before it matches its file
		// checksum: a change anywhere in it is found here.
		if err := ltx.NewDecoder(bytes.NewReader(head)).Verify(); err != nil {
			if errors.Is(err, ltx.ErrChecksumMismatch) {
				return nil, fmt.Errorf("read %s: %w: the file is damaged", storage.FileName(info.Level, info.MinTXID, info.MaxTXID), err)
			}
			return nil, invalidf(info, "%v", err)
		}
	}
	fx, err := parseFileIndex(ctx, client, sem, info, head, tail, tailStart)
	if err != nil {
		return nil, err
	}
	if whole {
		fx.sumWhole(head)
		head = head[:min(len(head), headBytes)]
	}
	fx.pending.Store(&pendingFrames{head: head})
	return fx, nil
}

// parseFileIndex reads the header, trailer and page index of a file from
// its first bytes (head) and its last bytes (tail, from tailStart), reading
// more only when the index starts before tailStart.
func parseFileIndex(ctx context.Context, client storage.Client, sem chan struct{}, info *ltx.FileInfo, head, tail []byte, tailStart int64) (*fileIndex, error) {
	size := info.Size
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(head); err != nil {
		return nil, invalidf(info, "header: %v", err)
	}
	if err := hdr.Validate(); err != nil {
		return nil, invalidf(info, "header: %v", err)
	}
	if hdr.MinTXID != info.MinTXID || hdr.MaxTXID != info.MaxTXID {
		return nil, invalidf(info, "header holds TXIDs %s-%s, not those of its name", hdr.MinTXID, hdr.MaxTXID)
	}
	var trailer ltx.Trailer
	if err := trailer.UnmarshalBinary(tail[len(tail)-ltx.TrailerSize:]); err != nil {
		return nil, invalidf(info, "trailer: %v", err)
	}
	if err := trailer.Validate(hdr); err != nil {
		return nil, invalidf(info, "trailer: %v", err)
	}

	// The index size field counts the records and the end marker.
	sizeAt := size - ltx.TrailerSize - indexSizeLen
	indexSize := binary.BigEndian.Uint64(tail[sizeAt-tailStart:])
	if indexSize < 1 || indexSize > uint64(sizeAt-ltx.HeaderSize-ltx.PageHeaderSize) {
		return nil, invalidf(info, "page index size %d does not fit in a %d-byte file", indexSize, size)
	}
	indexStart := sizeAt - int64(indexSize)
	blockEnd := indexStart - ltx.PageHeaderSize // where the end-of-pages marker starts

	// raw runs from the end-of-pages marker to the trailer.
	var raw []byte
	if blockEnd >= tailStart {
		raw = tail[blockEnd-tailStart : len(tail)-ltx.TrailerSize]
	} else {
		more, err := readChunked(ctx, client, sem, info, blockEnd, tailStart-blockEnd)
		if err != nil {
			return nil, err
		}
		raw = append(more, tail[:len(tail)-ltx.TrailerSize]...)
	}
	if !bytes.Equal(raw[:ltx.PageHeaderSize], make([]byte, ltx.PageHeaderSize)) {
		return nil, invalidf(info, "no end-of-pages marker before the page index at offset %d", indexStart)
	}
	r := bytes.NewReader(raw[ltx.PageHeaderSize:])
	elems, err := ltx.DecodePageIndex(r, info.Level, info.MinTXID, info.MaxTXID)
	if err != nil {
		return nil, invalidf(info, "page index: %v", err)
	} else if r.Len() != 0 {
		return nil, invalidf(info, "page index: %d bytes left over", r.Len())
	}

	fb := newIndexBuilder(info, hdr, trailer, blockEnd, len(elems))
	if uint64(hdr.Commit) <= 2*uint64(len(elems)) {
		// The file holds most pages of the database (a snapshot, a large
		// compaction): order its entries by page number in a table of the
		// commit size, rather than sorting page numbers and looking each up.
		byPgno := make([]ltx.PageIndexElem, hdr.Commit+1)
		for pgno, e := range elems {
			if pgno > hdr.Commit {
				return nil, invalidf(info, "page index holds page %d beyond the commit size of %d pages", pgno, hdr.Commit)
			}
			byPgno[pgno] = e
		}
		for pgno := uint32(1); pgno <= hdr.Commit; pgno++ {
			// DecodePageIndex fills MinTXID (at least 1) in every entry.
			if e := byPgno[pgno]; e.MinTXID != 0 {
				if err := fb.add(pgno, e.Offset, e.Size); err != nil {
					return nil, err
				}
			}
		}
	} else {
		pgnos := make([]uint32, 0, len(elems))
		for pgno := range elems {
			pgnos = append(pgnos, pgno)
		}
		slices.Sort(pgnos)
		for _, pgno := range pgnos {
			if err := fb.add(pgno, elems[pgno].Offset, elems[pgno].Size); err != nil {
				return nil, err
			}
		}
	}
	fx, err := fb.finish(true)
	if err != nil {
		return nil, err
	}
	return fx, nil
}

// readChunked reads exactly n bytes at off, in parallel requests of at
// most tailChunk bytes.
func readChunked(ctx context.Context, client storage.Client, sem chan struct{}, info *ltx.FileInfo, off, n int64) ([]byte, error) {
	if n <= tailChunk {
		return readRange(ctx, client, sem, info, off, n)
	}
	b := make([]byte, n)
	g, gctx := errgroup.WithContext(ctx)
	for at := int64(0); at < n; at += tailChunk {
		g.Go(func() error {
			return readInto(gctx, client, sem, info, off+at, b[at:min(at+tailChunk, n)])
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return b, nil
}

// readRange reads exactly n bytes at off, holding a slot of sem.
func readRange(ctx context.Context, client storage.Client, sem chan struct{}, info *ltx.FileInfo, off, n int64) ([]byte, error) {
	b := make([]byte, n)
	if err := readInto(ctx, client, sem, info, off, b); err != nil {
		return nil, err
	}
	return b, nil
}

// readInto fills b with the bytes at off, holding a slot of sem.
func readInto(ctx context.Context, client storage.Client, sem chan struct{}, info *ltx.FileInfo, off int64, b []byte) error {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-sem }()

	n := int64(len(b))
	name := storage.FileName(info.Level, info.MinTXID, info.MaxTXID)
	rc, err := client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, off, n)
	if err != nil {
		return fmt.Errorf("read %s bytes %d-%d: %w", name, off, off+n, err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read %s bytes %d-%d: %w", name, off, off+n, err)
	}
	return nil
}

// indexBuilder checks the frames of a page index, from a file's own index
// or from its hint, as it builds the fileIndex: in ascending page order,
// none beyond the commit size nor the lock page, back to back from the
// end of the header up to the end of the page block, and every page of
// the database in a snapshot.
type indexBuilder struct {
	fx       *fileIndex
	blockEnd int64 // where the page block ends (at most, for a hint)
	next     int64 // where the next frame starts
	lock     uint32
}

func newIndexBuilder(info *ltx.FileInfo, hdr ltx.Header, trailer ltx.Trailer, blockEnd int64, n int) *indexBuilder {
	return &indexBuilder{
		fx: &fileIndex{
			file:  &File{Info: *info, Header: hdr, Trailer: trailer},
			pgnos: make([]uint32, 0, n),
			sizes: make([]uint32, 0, n),
		},
		blockEnd: blockEnd,
		next:     ltx.HeaderSize,
		lock:     ltx.LockPgno(hdr.PageSize),
	}
}

func (b *indexBuilder) add(pgno uint32, offset, size int64) error {
	info, hdr := &b.fx.file.Info, &b.fx.file.Header
	switch {
	case pgno > hdr.Commit:
		return invalidf(info, "page index holds page %d beyond the commit size of %d pages", pgno, hdr.Commit)
	case pgno == b.lock:
		return invalidf(info, "page index holds the lock page %d", pgno)
	case len(b.fx.pgnos) > 0 && pgno <= b.fx.pgnos[len(b.fx.pgnos)-1]:
		return invalidf(info, "page index holds page %d after page %d", pgno, b.fx.pgnos[len(b.fx.pgnos)-1])
	case offset != b.next:
		return invalidf(info, "page index puts page %d at offset %d, but its frame starts at %d", pgno, offset, b.next)
	case size <= ltx.PageHeaderSize || size > math.MaxUint32 || size > b.blockEnd-b.next:
		return invalidf(info, "page index gives page %d a frame of %d bytes at offset %d, outside the page block (%d-%d)", pgno, size, offset, ltx.HeaderSize, b.blockEnd)
	}
	b.fx.pgnos = append(b.fx.pgnos, pgno)
	b.fx.sizes = append(b.fx.sizes, uint32(size))
	b.next += size
	return nil
}

// finish checks the whole: exact says the frames must end exactly at the
// end of the page block (known from the file's own index).
func (b *indexBuilder) finish(exact bool) (*fileIndex, error) {
	info, hdr := &b.fx.file.Info, &b.fx.file.Header
	if exact && b.next != b.blockEnd {
		return nil, invalidf(info, "page index describes frames up to offset %d, but the page block ends at %d", b.next, b.blockEnd)
	}
	if hdr.IsSnapshot() {
		want := int(hdr.Commit)
		if b.lock <= hdr.Commit {
			want--
		}
		if len(b.fx.pgnos) != want {
			return nil, invalidf(info, "snapshot holds %d pages, not every page of the %d-page database", len(b.fx.pgnos), hdr.Commit)
		}
	}
	return b.fx, nil
}
