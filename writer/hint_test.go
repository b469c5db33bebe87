package writer_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"slices"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
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

// checkHint: the hint of the file level/min-max exists under the name
// its content gives, describes exactly the file (header, trailer, every
// frame by page, size and CRC-32C), and copies its interior frames.
func checkHint(t *testing.T, c storage.Client, level int, min, max ltx.TXID) {
	t.Helper()
	ctx := context.Background()
	rc, err := c.OpenLTXFile(ctx, level, min, max, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	file, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	want, err := manifest.BuildHint(level, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := storage.ReadAllObject(ctx, c, manifest.HintName(want.Source()), storage.ReadOptions{}, 1<<30)
	if err != nil {
		t.Fatalf("hint of %s: %v", storage.FileName(level, min, max), err)
	}
	got, err := manifest.DecodeHint(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Source() != want.Source() || got.Header != want.Header || !slices.Equal(got.Pgnos, want.Pgnos) ||
		!slices.Equal(got.Sizes, want.Sizes) || !slices.Equal(got.Sums, want.Sums) {
		t.Fatalf("hint of %s does not describe it", storage.FileName(level, min, max))
	}
	pages, _, _ := decodeAll(t, c, level, min, max)
	var interior []uint32
	for pgno, data := range pages {
		if manifest.IsInteriorPage(pgno, data) {
			interior = append(interior, pgno)
		}
	}
	copied := map[uint32]bool{}
	for _, f := range got.Frames {
		copied[got.Pgnos[f.Ordinal]] = true
	}
	for _, pgno := range interior {
		if !copied[pgno] {
			t.Fatalf("hint of %s lacks interior page %d", storage.FileName(level, min, max), pgno)
		}
	}
	if len(interior) == 0 {
		t.Fatalf("%s has no interior page to test with", storage.FileName(level, min, max))
	}
}

func hintNames(t testing.TB, c storage.Client) []string {
	t.Helper()
	objs, err := c.ListObjects(context.Background(), manifest.HintDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	return names
}

// TestHints: a snapshot, a compaction and a large L0 file each get a hint;
// Litestream's levels never show them; retention removes a hint whose file
// is gone (and the hints of the first format); NoHints writes none.
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
	checkHint(t, c, 0, 1, 1) // the first L0 file holds the whole database
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
	var upper []string
	for _, f := range all {
		if f.Level > 0 {
			upper = append(upper, storage.FileName(f.Level, f.MinTXID, f.MaxTXID))
		}
	}
	if want := []string{storage.FileName(1, l1.MinTXID, l1.MaxTXID), storage.FileName(storage.SnapshotLevel, 1, snap.MaxTXID)}; !slices.Equal(upper, want) {
		t.Fatalf("levels 1..%d hold %v, want only %v", storage.SnapshotLevel, upper, want)
	}

	// A hint whose file is gone goes with retention, as does a hint of the
	// first format (an LTX file at the legacy level) whose file is gone.
	stray := manifest.HintName(manifest.Source{Level: 1, MinTXID: l1.MaxTXID + 1, MaxTXID: l1.MaxTXID + 100, FileChecksum: ltx.ChecksumFlag | 1})
	if _, err := c.WriteObject(ctx, stray, bytes.NewReader([]byte("stray")), storage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	legacy := storagetest.NewDB(4096)
	legacy.Apply(t, 1, map[uint32][]byte{1: storagetest.FillPage(4096, 1, 1)})
	for range 2 {
		legacy.Apply(t, 1, map[uint32][]byte{1: storagetest.FillPage(4096, 1, 2)})
	}
	old := legacy.Apply(t, 1, map[uint32][]byte{1: storagetest.FillPage(4096, 1, 3)}) // [4,4]
	if _, err := c.WriteLTXFile(ctx, storage.LegacyHintLevel, 4, 4, bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	before := hintNames(t, c)
	if err := r.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	after := hintNames(t, c)
	if slices.Contains(after, stray) || len(after) != len(before)-1 {
		t.Fatalf("hints after retention: %v (before: %v), want all but %s", after, before, stray)
	}
	if left := listLevel(t, c, storage.LegacyHintLevel); len(left) != 0 {
		t.Fatalf("a hint of the first format whose file is gone stayed: %v", left)
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
	if h := hintNames(t, c2); len(h) != 0 {
		t.Fatalf("NoHints wrote %d hints", len(h))
	}
}

// fill inserts n rows in one statement.
func fill(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	execSQL(t, db, `INSERT INTO t (v, n) SELECT hex(randomblob(20)), value FROM generate_series(1, ?)`, n)
}
