package storage

import (
	"fmt"
	"io"

	"github.com/superfly/ltx"
)

// HintLevel is the level that holds hint objects. A hint copies the B-tree
// interior pages of one snapshot or compaction file, so that a reader gets
// them with one request at open instead of one request per page on its
// first lookups. Hints are optional: a reader without one reads the pages
// from the file itself. Litestream lists levels 0..SnapshotLevel only, so
// it never sees them (file: <root>/ltx/16/, S3: <prefix>/0010/).
//
// The hint of a file that ends at TXID T (L<level>/<min>-<T>.ltx, T > 1) is
// HintLevel/<T>-<T>.ltx, an LTX file (ltx encodes and decodes it) written
// after its source, immutable like it:
//   - page size and commit are the source's; MinTXID and MaxTXID are both
//     T, as its name says (a hint is not a snapshot, which would have to
//     hold every page); the timestamp is the source's;
//   - the pre-apply checksum is the source's file checksum (its trailer's
//     FileChecksum): the hint applies to exactly those bytes, and a reader
//     ignores a hint whose source is not the file it has. Files of several
//     levels can end at T: the writer gives the hint to the one a reader
//     plans with (a snapshot before a compaction, a higher compaction level
//     before a lower), and the others are read without a hint;
//   - the pages are copies of the source's pages, in page order; the
//     post-apply checksum is the checksum of those pages (ltx.ChecksumPage,
//     XORed, with ltx.ChecksumFlag), checked by the reader with the file
//     checksum.
const HintLevel = 16

// MaxHintPageBytes bounds the pages a hint holds (uncompressed): a database
// with more interior pages than this (tens of gigabytes) gets no hint, as a
// reader's cache could not hold them anyway.
const MaxHintPageBytes = 64 << 20

// IsInteriorPage reports whether a database page is a B-tree interior page
// (table or index), judged from its page-type byte: at offset 100 on page 1,
// after the database header, else at offset 0.
func IsInteriorPage(pgno uint32, data []byte) bool {
	off := 0
	if pgno == 1 {
		off = 100
	}
	if len(data) <= off {
		return false
	}
	t := data[off]
	return t == 0x02 || t == 0x05
}

// HintHeader is the header of the hint of a source file whose header is src
// and whose file checksum is sum.
func HintHeader(src ltx.Header, sum ltx.Checksum) ltx.Header {
	return ltx.Header{
		Version:          ltx.Version,
		PageSize:         src.PageSize,
		Commit:           src.Commit,
		MinTXID:          src.MaxTXID,
		MaxTXID:          src.MaxTXID,
		Timestamp:        src.Timestamp,
		PreApplyChecksum: sum,
	}
}

// HintPage is one page of a hint.
type HintPage struct {
	Pgno uint32
	Data []byte
}

// EncodeHint writes the hint of a source file (header src, file checksum
// sum) holding pages, which must be in ascending page order.
func EncodeHint(w io.Writer, src ltx.Header, sum ltx.Checksum, pages []HintPage) error {
	if sum&ltx.ChecksumFlag == 0 {
		return fmt.Errorf("encode hint of %s: no file checksum", ltx.FormatFilename(src.MinTXID, src.MaxTXID))
	}
	if src.MaxTXID < 2 {
		return fmt.Errorf("encode hint of %s: a file that ends at TXID 1 has no hint", ltx.FormatFilename(src.MinTXID, src.MaxTXID))
	}
	enc, err := ltx.NewEncoder(w)
	if err != nil {
		return err
	}
	if err := enc.EncodeHeader(HintHeader(src, sum)); err != nil {
		return fmt.Errorf("encode hint of %s: %w", ltx.FormatFilename(src.MinTXID, src.MaxTXID), err)
	}
	var pagesSum ltx.Checksum
	for _, p := range pages {
		if err := enc.EncodePage(ltx.PageHeader{Pgno: p.Pgno}, p.Data); err != nil {
			return fmt.Errorf("encode hint of %s: page %d: %w", ltx.FormatFilename(src.MinTXID, src.MaxTXID), p.Pgno, err)
		}
		pagesSum ^= ltx.ChecksumPage(p.Pgno, p.Data)
	}
	enc.SetPostApplyChecksum(ltx.ChecksumFlag | pagesSum)
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode hint of %s: %w", ltx.FormatFilename(src.MinTXID, src.MaxTXID), err)
	}
	return nil
}
