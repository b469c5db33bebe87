package writer

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/superfly/ltx"
)

// memorySpoolSize is the largest L0 file kept in memory while it waits for
// its upload; larger ones (snapshots after a doubt) go to a temp file.
const memorySpoolSize = 8 << 20

// spool holds an encoded file until it is uploaded, so that a failed upload
// is retried with the very same bytes: a retry after an upload that landed
// but was reported failed then writes an identical file.
type spool struct {
	dir     string
	pattern string // of the temp file's name, for os.CreateTemp
	buf     bytes.Buffer
	file    *os.File
	size    int64
}

func (s *spool) Write(p []byte) (int, error) {
	if s.file == nil && s.buf.Len()+len(p) > memorySpoolSize {
		f, err := os.CreateTemp(s.dir, s.pattern)
		if err != nil {
			return 0, fmt.Errorf("spool LTX file: %w", err)
		}
		if _, err := f.Write(s.buf.Bytes()); err != nil {
			f.Close()
			os.Remove(f.Name())
			return 0, fmt.Errorf("spool LTX file %s: %w", f.Name(), err)
		}
		s.buf = bytes.Buffer{}
		s.file = f
	}
	var n int
	var err error
	if s.file != nil {
		n, err = s.file.Write(p)
		if err != nil {
			err = fmt.Errorf("spool LTX file %s: %w", s.file.Name(), err)
		}
	} else {
		n, err = s.buf.Write(p)
	}
	s.size += int64(n)
	return n, err
}

// reader reads the spooled bytes from the start.
func (s *spool) reader() io.Reader {
	if s.file != nil {
		return io.NewSectionReader(s.file, 0, s.size)
	}
	return bytes.NewReader(s.buf.Bytes())
}

// headerBytes is the first HeaderSize bytes (the encoded LTX header).
func (s *spool) headerBytes() []byte {
	b := make([]byte, ltx.HeaderSize)
	_, _ = io.ReadFull(s.reader(), b)
	return b
}

func (s *spool) close() {
	if s.file != nil {
		s.file.Close()
		os.Remove(s.file.Name())
		s.file = nil
	}
}

// spoolSuffix ends the names of spool files.
const spoolSuffix = ".ltx.tmp"

// spoolPrefix starts the names of the spool files of one database and
// replica: ltx-writer-<hash of both>-. Only one writer replicates a
// database into a replica, so the files with it that a killed writer left
// are removed when the next one opens (a whole-database L0 file of a large
// database is spooled, and a crash loop would fill the disk with them).
// Removing a file that a live writer still has open takes nothing from it
// on Unix, and fails harmlessly elsewhere.
func spoolPrefix(dbPath, replica string) string {
	h := fnv.New64a()
	h.Write([]byte(dbPath + "\x00" + replica))
	return fmt.Sprintf("ltx-writer-%016x-", h.Sum64())
}

// removeStaleSpools removes the spool files of this database and replica
// left by a writer that was killed.
func (r *Replicator) removeStaleSpools() {
	dir := r.opts.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	stale, _ := filepath.Glob(filepath.Join(dir, r.spoolPrefix+"*"+spoolSuffix))
	for _, name := range stale {
		if err := os.Remove(name); err == nil {
			r.log.Info("removed a spool file left by a writer that stopped mid-upload", "file", name)
		}
	}
}

// pendingFile is an encoded L0 file waiting for its upload, and the state
// change that its upload makes true.
type pendingFile struct {
	hdr          ltx.Header
	body         *spool
	fileChecksum ltx.Checksum // the trailer's CRC-64 of the whole file
	apply        func(*state)
	// heldAsOf: once uploaded, the replica holds every commit made before
	// this time (the start of the sync that built the file).
	heldAsOf time.Time
}

// l0Encoder encodes one L0 file into a spool.
type l0Encoder struct {
	hdr ltx.Header
	sp  *spool
	enc *ltx.Encoder
}

func (r *Replicator) newL0Encoder(hdr ltx.Header) (*l0Encoder, error) {
	sp := &spool{dir: r.opts.TempDir, pattern: r.spoolPrefix + "*" + spoolSuffix}
	enc, err := ltx.NewEncoder(sp)
	if err != nil {
		return nil, err
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		sp.close()
		return nil, fmt.Errorf("encode header of L0 %s: %w", ltx.FormatFilename(hdr.MinTXID, hdr.MaxTXID), err)
	}
	return &l0Encoder{hdr: hdr, sp: sp, enc: enc}, nil
}

func (e *l0Encoder) page(pgno uint32, data []byte) error {
	if err := e.enc.EncodePage(ltx.PageHeader{Pgno: pgno}, data); err != nil {
		return fmt.Errorf("encode page %d of L0 %s: %w", pgno, ltx.FormatFilename(e.hdr.MinTXID, e.hdr.MaxTXID), err)
	}
	return nil
}

// finish closes the file with its post-apply checksum (dropped when the
// file tracks none) and hands the spool to a pendingFile.
func (e *l0Encoder) finish(post ltx.Checksum) (*pendingFile, error) {
	if !e.hdr.NoChecksum() {
		e.enc.SetPostApplyChecksum(post)
	}
	if err := e.enc.Close(); err != nil {
		return nil, fmt.Errorf("encode L0 %s: %w", ltx.FormatFilename(e.hdr.MinTXID, e.hdr.MaxTXID), err)
	}
	p := &pendingFile{hdr: e.hdr, body: e.sp, fileChecksum: e.enc.Trailer().FileChecksum}
	e.sp = nil
	return p, nil
}

// discard drops an unfinished file.
func (e *l0Encoder) discard() {
	if e.sp != nil {
		e.sp.close()
	}
}
