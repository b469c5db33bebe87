package index

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// testReplica is a replica in a temp directory written from a
// storagetest.DB, with the expected page image of every TXID, so a test can
// check any version page by page.
type testReplica struct {
	tb     testing.TB
	dir    string
	store  *file.Client   // uncounted, for checks and writes
	client *wrap.Counting // what the index under test reads through
	db     *storagetest.DB
	epoch  time.Time // commit time of TXID 0; TXID n commits n seconds later

	l0     map[ltx.TXID][]byte            // encoded L0 file of each TXID
	images map[ltx.TXID]map[uint32][]byte // pages at each TXID
	commit map[ltx.TXID]uint32
}

const testPageSize = 512

func newTestReplica(tb testing.TB) *testReplica {
	dir := tb.TempDir()
	store := file.New(dir)
	db := storagetest.NewDB(testPageSize)
	r := &testReplica{
		tb: tb, dir: dir, store: store, client: wrap.NewCounting(store), db: db,
		epoch: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
		l0:    map[ltx.TXID][]byte{}, images: map[ltx.TXID]map[uint32][]byte{}, commit: map[ltx.TXID]uint32{},
	}
	// Apply and Snapshot read the clock after the TXID is set.
	db.Now = func() time.Time { return r.timeOf(db.TXID()) }
	return r
}

// timeOf is the commit time of txid (see newTestReplica).
func (r *testReplica) timeOf(txid ltx.TXID) time.Time {
	return r.epoch.Add(time.Duration(txid) * time.Second)
}

// apply commits a transaction setting pages to fresh versions (named by the
// TXID) and leaving the database commit pages long, and writes its L0 file.
func (r *testReplica) apply(commit uint32, pgnos ...uint32) ltx.TXID {
	r.tb.Helper()
	pages := map[uint32][]byte{}
	for _, pgno := range pgnos {
		pages[pgno] = storagetest.FillPage(testPageSize, pgno, int(r.db.TXID()+1))
	}
	data := r.db.Apply(r.tb, commit, pages)
	txid := r.db.TXID()
	r.l0[txid] = data
	img := map[uint32][]byte{}
	for pgno := uint32(1); pgno <= commit; pgno++ {
		if p := r.db.Page(pgno); p != nil {
			img[pgno] = p
		}
	}
	r.images[txid] = img
	r.commit[txid] = commit
	r.write(0, txid, txid, data)
	return txid
}

// grow commits a transaction that extends the database to commit pages,
// writing every new page (as SQLite does) and page 1.
func (r *testReplica) grow(commit uint32) ltx.TXID {
	r.tb.Helper()
	pgnos := []uint32{1}
	for p := r.db.Commit() + 1; p <= commit; p++ {
		pgnos = append(pgnos, p)
	}
	return r.apply(commit, pgnos...)
}

func (r *testReplica) write(level int, min, max ltx.TXID, data []byte) {
	r.tb.Helper()
	if _, err := r.store.WriteLTXFile(context.Background(), level, min, max, bytes.NewReader(data)); err != nil {
		r.tb.Fatal(err)
	}
}

// compact writes the compaction of the L0 files min..max at level.
func (r *testReplica) compact(level int, min, max ltx.TXID) {
	r.tb.Helper()
	var files [][]byte
	for txid := min; txid <= max; txid++ {
		files = append(files, r.l0[txid])
	}
	r.write(level, min, max, storagetest.Compact(r.tb, files...))
}

// snapshot writes a snapshot [1, TXID] at level 9.
func (r *testReplica) snapshot() {
	r.tb.Helper()
	r.write(storage.SnapshotLevel, 1, r.db.TXID(), r.db.Snapshot(r.tb))
}

// remove deletes files, as retention does.
func (r *testReplica) remove(level int, min, max ltx.TXID) {
	r.tb.Helper()
	if err := os.Remove(storage.FilePath(r.dir, level, min, max)); err != nil {
		r.tb.Fatal(err)
	}
}

// putRaw stores arbitrary bytes under a file name, bypassing every check.
func (r *testReplica) putRaw(level int, min, max ltx.TXID, data []byte) {
	r.tb.Helper()
	path := storage.FilePath(r.dir, level, min, max)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		r.tb.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		r.tb.Fatal(err)
	}
}

// readPage reads and decodes the frame an entry points at.
func readPage(tb testing.TB, c storage.Client, e Entry) (uint32, []byte, error) {
	tb.Helper()
	f := e.File.Info
	rc, err := c.OpenLTXFile(context.Background(), f.Level, f.MinTXID, f.MaxTXID, e.Offset, e.Size)
	if err != nil {
		return 0, nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return 0, nil, err
	}
	hdr, data, err := ltx.DecodePageData(b)
	return hdr.Pgno, data, err
}

// check verifies every page of v against the image of its TXID: each page
// that exists reads back exactly, and no other page is found.
func (r *testReplica) check(v *Version) {
	r.tb.Helper()
	img, ok := r.images[v.TXID()]
	if !ok {
		r.tb.Fatalf("version at TXID %d: no such transaction", v.TXID())
	}
	if v.Commit() != r.commit[v.TXID()] {
		r.tb.Fatalf("version at TXID %d: commit %d, want %d", v.TXID(), v.Commit(), r.commit[v.TXID()])
	}
	if v.PageSize() != testPageSize {
		r.tb.Fatalf("version at TXID %d: page size %d", v.TXID(), v.PageSize())
	}
	if want := r.timeOf(v.TXID()); !v.Timestamp().Equal(want) {
		r.tb.Fatalf("version at TXID %d: timestamp %v, want %v", v.TXID(), v.Timestamp(), want)
	}
	files := map[*File]bool{}
	for _, f := range v.Files() {
		files[f] = true
	}
	for pgno := uint32(0); pgno <= v.Commit()+2; pgno++ {
		e, ok := v.Lookup(pgno)
		want, exists := img[pgno]
		if !exists {
			if ok {
				r.tb.Fatalf("version at TXID %d: page %d found in %s, but it does not exist", v.TXID(), pgno, e.File.Name())
			}
			continue
		}
		if !ok {
			r.tb.Fatalf("version at TXID %d: page %d not found", v.TXID(), pgno)
		}
		if !files[e.File] {
			r.tb.Fatalf("version at TXID %d: page %d is in %s, which Files() omits", v.TXID(), pgno, e.File.Name())
		}
		got, data, err := readPage(r.tb, r.store, e)
		if err != nil {
			r.tb.Fatalf("version at TXID %d: page %d in %s: %v", v.TXID(), pgno, e.File.Name(), err)
		}
		if got != pgno || !bytes.Equal(data, want) {
			r.tb.Fatalf("version at TXID %d: page %d from %s is page %d version %d, want version %d",
				v.TXID(), pgno, e.File.Name(), got, int(data[4])<<8|int(data[5]), int(want[4])<<8|int(want[5]))
		}
	}
}

// lookups records every entry of a version, to prove later that it never
// changed.
func lookups(v *Version) map[uint32]Entry {
	m := map[uint32]Entry{}
	for pgno := uint32(1); pgno <= v.Commit(); pgno++ {
		if e, ok := v.Lookup(pgno); ok {
			m[pgno] = e
		}
	}
	return m
}

func sameLookups(v *Version, want map[uint32]Entry) bool {
	return maps.Equal(lookups(v), want)
}

func mustUpdate(tb testing.TB, x *Index) *Version {
	tb.Helper()
	v, err := x.Update(context.Background())
	if err != nil {
		tb.Fatalf("update: %v", err)
	}
	return v
}

func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// headAndTail makes files larger than tailGuess be read by a head and a
// tail read, as files larger than wholeRead are, for tests of those reads
// on files of a few hundred KiB.
func headAndTail(tb testing.TB) {
	old := wholeRead
	wholeRead = tailGuess
	tb.Cleanup(func() { wholeRead = old })
}
