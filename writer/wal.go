package writer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// The WAL file format (https://sqlite.org/fileformat2.html#walformat): a
// 32-byte header, then frames of a 24-byte header and one page. A frame is
// valid only if its salts equal the header's and the cumulative checksum,
// seeded by the header's checksum, is intact up to and including it; a
// frame whose "database size" field is non-zero commits a transaction.
const (
	walHeaderSize      = 32
	walFrameHeaderSize = 24
	walMagicLE         = 0x377f0682
	walMagicBE         = 0x377f0683
	walVersion         = 3007000
)

// errNoWALHeader: the WAL file is missing, shorter than a header, or its
// header is not valid. SQLite then treats the WAL as empty, and so do we.
var errNoWALHeader = errors.New("no valid WAL header")

// walHeader is a parsed WAL header.
type walHeader struct {
	bigEndian bool // checksums read the content as big-endian words
	pageSize  uint32
	salt1     uint32
	salt2     uint32
	s0, s1    uint32 // the header's checksum: the seed of frame 1
}

// start is the position at the beginning of the generation.
func (h walHeader) start() walPos {
	return walPos{salt1: h.salt1, salt2: h.salt2, offset: walHeaderSize, s0: h.s0, s1: h.s1}
}

// walPos is a place in one WAL generation: the end of a commit frame (or
// the end of the header), with the cumulative checksum there so that the
// next frame can be verified.
type walPos struct {
	salt1, salt2 uint32
	offset       int64
	s0, s1       uint32
}

func (p walPos) sameGeneration(h walHeader) bool { return p.salt1 == h.salt1 && p.salt2 == h.salt2 }

// frameRef locates a verified frame: its offset and the cumulative checksum
// before it, so that a later read can verify it again on its own.
type frameRef struct {
	offset int64
	s0, s1 uint32
}

func parseWALHeader(b []byte) (walHeader, error) {
	if len(b) < walHeaderSize {
		return walHeader{}, errNoWALHeader
	}
	var h walHeader
	switch binary.BigEndian.Uint32(b[0:]) {
	case walMagicLE:
	case walMagicBE:
		h.bigEndian = true
	default:
		return walHeader{}, fmt.Errorf("%w: bad magic %08x", errNoWALHeader, binary.BigEndian.Uint32(b[0:]))
	}
	if v := binary.BigEndian.Uint32(b[4:]); v != walVersion {
		return walHeader{}, fmt.Errorf("%w: unknown version %d", errNoWALHeader, v)
	}
	h.pageSize = binary.BigEndian.Uint32(b[8:])
	if h.pageSize < 512 || h.pageSize > 65536 || h.pageSize&(h.pageSize-1) != 0 {
		return walHeader{}, fmt.Errorf("%w: bad page size %d", errNoWALHeader, h.pageSize)
	}
	h.salt1 = binary.BigEndian.Uint32(b[16:])
	h.salt2 = binary.BigEndian.Uint32(b[20:])
	s0, s1 := walChecksum(h.bigEndian, 0, 0, b[:24])
	h.s0, h.s1 = binary.BigEndian.Uint32(b[24:]), binary.BigEndian.Uint32(b[28:])
	if s0 != h.s0 || s1 != h.s1 {
		return walHeader{}, fmt.Errorf("%w: header checksum mismatch", errNoWALHeader)
	}
	return h, nil
}

// readWALHeader reads the header of the WAL file at path.
func readWALHeader(path string) (walHeader, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return walHeader{}, errNoWALHeader
	} else if err != nil {
		return walHeader{}, err
	}
	defer f.Close()
	b := make([]byte, walHeaderSize)
	if _, err := io.ReadFull(f, b); errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return walHeader{}, errNoWALHeader
	} else if err != nil {
		return walHeader{}, fmt.Errorf("read WAL header %s: %w", path, err)
	}
	return parseWALHeader(b)
}

// walChecksum continues SQLite's WAL checksum (s0, s1) over b, whose length
// is a multiple of 8.
func walChecksum(bigEndian bool, s0, s1 uint32, b []byte) (uint32, uint32) {
	if bigEndian {
		for i := 0; i+8 <= len(b); i += 8 {
			s0 += binary.BigEndian.Uint32(b[i:]) + s1
			s1 += binary.BigEndian.Uint32(b[i+4:]) + s0
		}
	} else {
		for i := 0; i+8 <= len(b); i += 8 {
			s0 += binary.LittleEndian.Uint32(b[i:]) + s1
			s1 += binary.LittleEndian.Uint32(b[i+4:]) + s0
		}
	}
	return s0, s1
}

// verifyFrame checks one frame (header and page) against the generation and
// the checksum before it, and returns its page number, commit size and the
// checksum after it.
func verifyFrame(h walHeader, s0, s1 uint32, frame []byte) (pgno, commit, n0, n1 uint32, ok bool) {
	if binary.BigEndian.Uint32(frame[8:]) != h.salt1 || binary.BigEndian.Uint32(frame[12:]) != h.salt2 {
		return 0, 0, 0, 0, false
	}
	n0, n1 = walChecksum(h.bigEndian, s0, s1, frame[:8])
	n0, n1 = walChecksum(h.bigEndian, n0, n1, frame[walFrameHeaderSize:])
	if n0 != binary.BigEndian.Uint32(frame[16:]) || n1 != binary.BigEndian.Uint32(frame[20:]) {
		return 0, 0, 0, 0, false
	}
	pgno = binary.BigEndian.Uint32(frame[0:])
	if pgno == 0 {
		return 0, 0, 0, 0, false
	}
	return pgno, binary.BigEndian.Uint32(frame[4:]), n0, n1, true
}

// walScan is what a scan found: the newest committed frame of each page in
// (from, end], the end (the last commit frame), and the database size there.
type walScan struct {
	end    walPos
	commit uint32 // database size in pages at end; 0 if no commit frame was found
	pages  map[uint32]frameRef
	frames int // committed frames read
}

// scanWAL reads the frames of generation h from position from, verifying
// salts and the checksum chain as SQLite's recovery does, up to the last
// commit frame or limit (if limit > 0, a scan that does not end on a
// commit frame exactly at limit reports that with ok == false). Frames after
// the last commit frame (a transaction in progress or rolled back) are left
// alone; a torn frame ends the scan like the end of the file.
func scanWAL(f io.ReaderAt, h walHeader, from walPos, limit int64) (scan walScan, ok bool, err error) {
	frameSize := int64(walFrameHeaderSize) + int64(h.pageSize)
	scan = walScan{end: from, pages: map[uint32]frameRef{}}
	br := bufio.NewReaderSize(io.NewSectionReader(f, from.offset, 1<<62), 1<<20)
	frame := make([]byte, frameSize)
	pending := map[uint32]frameRef{} // frames of the transaction being read
	pendingN := 0
	off, s0, s1 := from.offset, from.s0, from.s1
	for limit <= 0 || off < limit {
		if _, err := io.ReadFull(br, frame); errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		} else if err != nil {
			return walScan{}, false, fmt.Errorf("read WAL frame at %d: %w", off, err)
		}
		pgno, commit, n0, n1, valid := verifyFrame(h, s0, s1, frame)
		if !valid {
			break
		}
		pending[pgno] = frameRef{offset: off, s0: s0, s1: s1}
		pendingN++
		off += frameSize
		s0, s1 = n0, n1
		if commit != 0 {
			for pgno, ref := range pending {
				scan.pages[pgno] = ref
			}
			clear(pending)
			scan.frames += pendingN
			pendingN = 0
			scan.commit = commit
			scan.end = walPos{salt1: h.salt1, salt2: h.salt2, offset: off, s0: s0, s1: s1}
		}
	}
	return scan, limit <= 0 || scan.end.offset == limit, nil
}

// readFrame reads the page of a frame found by a scan, verifying the frame
// again: a WAL restarted since the scan has overwritten it.
func readFrame(f io.ReaderAt, h walHeader, ref frameRef, buf []byte) ([]byte, error) {
	frame := buf[:walFrameHeaderSize+int(h.pageSize)]
	if _, err := f.ReadAt(frame, ref.offset); err != nil {
		return nil, fmt.Errorf("read WAL frame at %d: %w", ref.offset, err)
	}
	if _, _, _, _, ok := verifyFrame(h, ref.s0, ref.s1, frame); !ok {
		return nil, fmt.Errorf("%w: WAL frame at %d changed since it was read (the WAL was restarted)", errWALChanged, ref.offset)
	}
	return frame[walFrameHeaderSize:], nil
}

// errWALChanged: frames read before are no longer in the WAL.
var errWALChanged = errors.New("WAL changed under the writer")
