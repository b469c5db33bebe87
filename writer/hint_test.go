package writer_test

import (
	"bytes"
	"context"
	"database/sql"
	"maps"
	"slices"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// decodeAll reads an LTX file of a replica: its pages, header and trailer.
func decodeAll(t testing.TB, c storage.Client, level int, min, max ltx.TXID) (map[uint32][]byte, ltx.Header, ltx.Trailer) {
	t.Helper()
	rc, err := c.OpenLTXFile(context.Background(), level, min, max, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	dec := ltx.NewDecoder(rc)
	if err := dec.DecodeHeader(); err != nil {
		t.Fatal(err)
	}
	pages := map[uint32][]byte{}
	for {
		var ph ltx.PageHeader
		data := make([]byte, dec.Header().PageSize)
		if err := dec.DecodePage(&ph, data); err != nil {
			break
		}
		pages[ph.Pgno] = data
	}
	if err := dec.Close(); err != nil {
		t.Fatalf("%s: %v", storage.FileName(level, min, max), err)
	}
	return pages, dec.Header(), dec.Trailer()
}

// checkHint: the hint of the file level/min-max exists, names the file by
// its checksum, and holds exactly the file's interior pages.
func checkHint(t *testing.T, c storage.Client, level int, min, max ltx.TXID) {
	t.Helper()
	pages, _, trailer := decodeAll(t, c, level, min, max)
	hint, hdr, _ := decodeAll(t, c, storage.HintLevel, max, max)
	if hdr.PreApplyChecksum != trailer.FileChecksum {
		t.Fatalf("hint of %s names checksum %s, the file has %s", storage.FileName(level, min, max), hdr.PreApplyChecksum, trailer.FileChecksum)
	}
	var interior []uint32
	for pgno, data := range pages {
		if storage.IsInteriorPage(pgno, data) {
			interior = append(interior, pgno)
		}
	}
	slices.Sort(interior)
	if got := slices.Sorted(maps.Keys(hint)); len(interior) == 0 || !slices.Equal(got, interior) {
		t.Fatalf("hint of %s holds pages %v, the file's interior pages are %v", storage.FileName(level, min, max), got, interior)
	}
	for pgno, data := range hint {
		if !bytes.Equal(data, pages[pgno]) {
			t.Fatalf("hint page %d differs from the file's", pgno)
		}
	}
}

// TestHints: a snapshot and a compaction each get a hint holding their
// interior pages; Litestream's levels never show them; retention removes
// a hint whose file is gone; NoHints writes none.
func TestHints(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/app.db"
	db := openApp(t, path)
	execSQL(t, db, `CREATE INDEX t_v ON t(v)`)
	fill(t, db, 20000)
	c := newReplica(t)
	r := newReplicator(t, path, c, testOpts())
	defer r.Close(ctx)
	mustSync(t, r)
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkHint(t, c, storage.SnapshotLevel, 1, snap.MaxTXID)

	fill(t, db, 5000)
	mustSync(t, r)
	fill(t, db, 5000)
	mustSync(t, r)
	l1, err := r.Compact(ctx, 1)
	if err != nil || l1 == nil {
		t.Fatalf("compact: %v, %v", l1, err)
	}
	checkHint(t, c, 1, l1.MinTXID, l1.MaxTXID)

	all, err := storage.ListAll(ctx, c, false)
	if err != nil {
		t.Fatal(err)
	}
	// A hint listed among the data levels would show there as a file the
	// writer never wrote.
	var upper []string
	for _, f := range all {
		if f.Level > 0 {
			upper = append(upper, storage.FileName(f.Level, f.MinTXID, f.MaxTXID))
		}
	}
	if want := []string{storage.FileName(1, l1.MinTXID, l1.MaxTXID), storage.FileName(storage.SnapshotLevel, 1, snap.MaxTXID)}; !slices.Equal(upper, want) {
		t.Fatalf("levels 1..%d hold %v, want only %v: a hint is listed among the data levels", storage.SnapshotLevel, upper, want)
	}

	// A hint whose file is gone goes with retention.
	stray := bytes.Clone(encodedHint(t, c, l1.MaxTXID))
	if _, err := c.WriteLTXFile(ctx, storage.HintLevel, l1.MaxTXID+100, l1.MaxTXID+100, bytes.NewReader(retarget(t, stray, l1.MaxTXID+100))); err != nil {
		t.Fatal(err)
	}
	if err := r.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	var kept []ltx.TXID
	for _, h := range listLevel(t, c, storage.HintLevel) {
		kept = append(kept, h.MaxTXID)
	}
	if !slices.Equal(kept, []ltx.TXID{snap.MaxTXID, l1.MaxTXID}) {
		t.Fatalf("hints after retention: %v, want those of the snapshot and the L1 file", kept)
	}

	// NoHints.
	path2 := t.TempDir() + "/other.db"
	db2 := openApp(t, path2)
	fill(t, db2, 20000)
	c2 := newReplica(t)
	opts := testOpts()
	opts.NoHints = true
	r2 := newReplicator(t, path2, c2, opts)
	defer r2.Close(ctx)
	mustSync(t, r2)
	if _, err := r2.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if h := listLevel(t, c2, storage.HintLevel); len(h) != 0 {
		t.Fatalf("NoHints wrote %d hints", len(h))
	}
}

// fill inserts n rows in one statement.
func fill(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	execSQL(t, db, `INSERT INTO t (v, n) SELECT hex(randomblob(20)), value FROM generate_series(1, ?)`, n)
}

func encodedHint(t testing.TB, c storage.Client, txid ltx.TXID) []byte {
	t.Helper()
	rc, err := c.OpenLTXFile(context.Background(), storage.HintLevel, txid, txid, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// retarget re-encodes a hint as if it ended at txid.
func retarget(t testing.TB, b []byte, txid ltx.TXID) []byte {
	t.Helper()
	dec := ltx.NewDecoder(bytes.NewReader(b))
	if err := dec.DecodeHeader(); err != nil {
		t.Fatal(err)
	}
	hdr := dec.Header()
	var pages []storage.HintPage
	for {
		var ph ltx.PageHeader
		data := make([]byte, hdr.PageSize)
		if err := dec.DecodePage(&ph, data); err != nil {
			break
		}
		pages = append(pages, storage.HintPage{Pgno: ph.Pgno, Data: data})
	}
	src := hdr
	src.MaxTXID = txid
	var buf bytes.Buffer
	if err := storage.EncodeHint(&buf, src, hdr.PreApplyChecksum, pages); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
