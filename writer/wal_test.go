package writer

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// walFixture makes a WAL with n committed transactions and one more left
// uncommitted (the connection stays in it), with autocheckpoint off.
func walFixture(t *testing.T, n int) (path string, app *sqlite3.Conn) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "db")
	app, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	for _, q := range []string{"PRAGMA journal_mode=wal", "PRAGMA wal_autocheckpoint=0", "PRAGMA cache_size=1", "CREATE TABLE t(x)"} {
		if err := app.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		if err := app.Exec("INSERT INTO t VALUES (randomblob(3000))"); err != nil {
			t.Fatal(err)
		}
	}
	return path, app
}

func scanFile(t *testing.T, path string) (walHeader, walScan) {
	t.Helper()
	h, err := readWALHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, _, err := scanWAL(f, h, h.start(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return h, s
}

func TestScanWAL(t *testing.T) {
	path, app := walFixture(t, 5)
	wal := path + "-wal"
	h, s := scanFile(t, wal)
	fi, _ := os.Stat(wal)
	if s.end.offset != fi.Size() || s.commit == 0 {
		t.Fatalf("scan ended at %d of %d, commit %d", s.end.offset, fi.Size(), s.commit)
	}
	committed := s.end.offset

	// Frames of a transaction that has not committed (spilled by a one-page
	// cache) are not copied.
	if err := app.Exec("BEGIN; INSERT INTO t SELECT randomblob(3000) FROM t; INSERT INTO t SELECT randomblob(3000) FROM t"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(wal); fi.Size() <= committed {
		t.Fatalf("the open transaction wrote no frames (WAL %d bytes)", fi.Size())
	}
	if _, s2 := scanFile(t, wal); s2.end.offset != committed {
		t.Fatalf("scan reached %d, past the last commit at %d", s2.end.offset, committed)
	}
	if err := app.Exec("ROLLBACK"); err != nil {
		t.Fatal(err)
	}

	// A frame with a flipped byte ends the scan before it (a torn write),
	// and so does a frame with other salts (left by an older generation).
	frameSize := int64(walFrameHeaderSize) + int64(h.pageSize)
	for _, tc := range []struct {
		name string
		at   int64
	}{
		{"corrupt page", walHeaderSize + 2*frameSize + walFrameHeaderSize + 100},
		{"other salt", walHeaderSize + 2*frameSize + 8},
	} {
		b, err := os.ReadFile(wal)
		if err != nil {
			t.Fatal(err)
		}
		b[tc.at] ^= 0x55
		broken := filepath.Join(t.TempDir(), "wal")
		if err := os.WriteFile(broken, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, s3 := scanFile(t, broken)
		if s3.end.offset >= walHeaderSize+3*frameSize {
			t.Fatalf("%s: scan went past the broken third frame to %d", tc.name, s3.end.offset)
		}
		for pgno, ref := range s3.pages {
			if ref.offset >= walHeaderSize+2*frameSize {
				t.Fatalf("%s: page %d taken from frame at %d, at or after the broken one", tc.name, pgno, ref.offset)
			}
		}
	}

	// A header with a bad checksum is no header.
	b, _ := os.ReadFile(wal)
	binary.BigEndian.PutUint32(b[16:], binary.BigEndian.Uint32(b[16:])+1)
	if _, err := parseWALHeader(b); err == nil {
		t.Fatal("header with a changed salt and the old checksum accepted")
	}
}

// TestReadFrameAfterRestart: a frame found by a scan and then overwritten
// by a restarted WAL is refused on reading.
func TestReadFrameAfterRestart(t *testing.T) {
	path, app := walFixture(t, 3)
	wal := path + "-wal"
	h, s := scanFile(t, wal)
	f0, _ := os.Open(wal)
	buf0 := make([]byte, walFrameHeaderSize+int(h.pageSize))
	if _, err := readFrame(f0, h, frameRef{offset: walHeaderSize, s0: h.s0, s1: h.s1}, buf0); err != nil {
		t.Fatalf("read the first frame before the restart: %v", err)
	}
	f0.Close()
	if _, _, err := app.WALCheckpoint("main", sqlite3.CHECKPOINT_PASSIVE); err != nil {
		t.Fatal(err)
	}
	if err := app.Exec("INSERT INTO t VALUES (1)"); err != nil { // restarts the WAL
		t.Fatal(err)
	}
	h2, _ := scanFile(t, wal)
	if h2.salt1 == h.salt1 && h2.salt2 == h.salt2 {
		t.Fatal("the WAL did not restart")
	}
	f, _ := os.Open(wal)
	defer f.Close()
	buf := make([]byte, walFrameHeaderSize+int(h.pageSize))
	if len(s.pages) == 0 {
		t.Fatal("scan found no pages")
	}
	first := frameRef{offset: walHeaderSize, s0: h.s0, s1: h.s1} // overwritten by the restart
	if _, err := readFrame(f, h, first, buf); err == nil {
		t.Fatal("read an overwritten frame without error")
	}
}
