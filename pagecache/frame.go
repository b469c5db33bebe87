package pagecache

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

func (k FileKey) name() string { return storage.FileName(k.Level, k.MinTXID, k.MaxTXID) }

// readRange reads exactly n bytes at off of a file, counting the request
// and the bytes. A missing file stays detectable with errors.Is
// (os.ErrNotExist): it is how a caller learns that retention removed it.
func (c *Cache) readRange(ctx context.Context, f FileKey, off, n int64) ([]byte, error) {
	c.requests.Add(1)
	rc, err := c.client.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, n)
	m, err := io.ReadFull(rc, b)
	c.bytes.Add(int64(m))
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// fetch reads one page's frame and decodes it.
func (c *Cache) fetch(ctx context.Context, ref Ref) ([]byte, error) {
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	b, err := c.readRange(ctx, ref.File, ref.Offset, ref.Size)
	if err != nil {
		return nil, fmt.Errorf("read page %d from %s at offset %d: %w", ref.Pgno, ref.File.name(), ref.Offset, err)
	}
	return checkAndDecode(ref, b)
}

// checkAndDecode checks a frame read from storage with ref.Check, then
// decodes it (see decodeFrame).
func checkAndDecode(ref Ref, b []byte) ([]byte, error) {
	if ref.Check != nil {
		if err := ref.Check.CheckFrame(ref.Pgno, b); err != nil {
			return nil, fmt.Errorf("read page %d from %s at offset %d: %w", ref.Pgno, ref.File.name(), ref.Offset, err)
		}
	}
	return decodeFrame(ref, b)
}

func checkRef(ref Ref) error {
	if ref.Pgno == 0 || ref.Size <= ltx.PageHeaderSize || ref.Offset < ltx.HeaderSize || !ltx.IsValidPageSize(ref.PageSize) {
		return fmt.Errorf("read page %d from %s: invalid reference (offset %d, size %d, page size %d)", ref.Pgno, ref.File.name(), ref.Offset, ref.Size, ref.PageSize)
	}
	return nil
}

// decodeFrame decodes a frame read for ref and checks that it is the page
// asked for, whole: a frame of another page, a short or overlong frame, or
// a block that does not decompress to exactly one page is an error naming
// the file and page (matching ltx.ErrInvalidFile), never wrong bytes.
//
// A frame in the block format (a size prefix, what ltx writes now) is
// decompressed straight into a page-sized buffer, as ltx.DecodePageData
// does into a 64 KiB one: a block that would decompress to more than a page
// fails for want of room. The older frame format goes through
// ltx.DecodePageData.
func decodeFrame(ref Ref, b []byte) ([]byte, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("read page %d from %s at offset %d: %w: %s", ref.Pgno, ref.File.name(), ref.Offset, ltx.ErrInvalidFile, fmt.Sprintf(format, args...))
	}
	var hdr ltx.PageHeader
	if err := hdr.UnmarshalBinary(b); err != nil {
		return nil, fail("decode frame: %v", err)
	}
	if hdr.Pgno != ref.Pgno {
		return nil, fail("the frame holds page %d", hdr.Pgno)
	}
	if err := hdr.Validate(); err != nil {
		return nil, fail("frame header: %v", err)
	}
	if hdr.Flags&ltx.PageHeaderFlagSize == 0 {
		_, data, err := ltx.DecodePageData(b)
		if err != nil {
			return nil, fail("decode frame: %v", err)
		}
		if len(data) != int(ref.PageSize) {
			return nil, fail("the frame decodes to %d bytes, not a %d-byte page", len(data), ref.PageSize)
		}
		return bytes.Clone(data), nil
	}
	if len(b) < ltx.PageHeaderSize+4 {
		return nil, fail("decode frame: %d bytes, too short for a block size", len(b))
	}
	// The block must fill the frame: a longer frame means the index and the
	// file disagree.
	if n := ltx.PageHeaderSize + 4 + int64(binary.BigEndian.Uint32(b[ltx.PageHeaderSize:])); n != int64(len(b)) {
		return nil, fail("the frame is %d bytes but its block ends at %d", len(b), n)
	}
	page := make([]byte, ref.PageSize)
	n, err := lz4.UncompressBlock(b[ltx.PageHeaderSize+4:], page)
	if err != nil {
		return nil, fail("decompress block: %v", err)
	}
	if n != int(ref.PageSize) {
		return nil, fail("the frame decodes to %d bytes, not a %d-byte page", n, ref.PageSize)
	}
	return page, nil
}

// Put keeps the page of frame, the frame of page key.Pgno of key.File as
// read by someone else (an index reads the first frames of a file, and the
// hints of snapshots, along with page indexes). The frame is checked and
// decoded as one Page reads, so a bad frame is an error naming the file
// and page, and nothing is kept. A page held already is left as it is. The
// page is kept as a hot one (see segments): what is handed over is page 1,
// the schema, B-tree interior pages and pages just written. Page 1 also
// goes to the disk tier, as a page read goes.
func (c *Cache) Put(key Key, pageSize uint32, frame []byte) error {
	if c.Contains(key) {
		return nil
	}
	ref := Ref{Key: key, Offset: ltx.HeaderSize, Size: int64(len(frame)), PageSize: pageSize}
	if err := checkRef(ref); err != nil {
		return err
	}
	page, err := decodeFrame(ref, frame)
	if err != nil {
		return err
	}
	c.keep(key, page, true)
	if c.disk != nil && key.Pgno == 1 {
		// Every open reads page 1 first: on disk, it lets a reader
		// started again open with the manifest's read alone.
		c.disk.put(key, page)
	}
	return nil
}
