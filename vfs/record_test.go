package vfs

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// recordDB is a SQLite database written by SQLite itself, with rows of
// every integer width, NULLs, text and blobs, rows whose payload spills to
// overflow pages (an integer before the spill and one after it), and an
// index on an integer column with duplicate keys; it returns the file's
// pages and the connection.
func recordDB(t testing.TB) ([][]byte, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "record.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=page_size(1024)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{
		`CREATE TABLE r(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c INTEGER, d BLOB, e INTEGER)`,
		`CREATE INDEX r_a ON r(a)`,
		// a: widths of 0 to 8 bytes, negative too, and duplicates; c: NULL now and then.
		`INSERT INTO r(id, a, b, c, d, e) SELECT value * 3,
			CASE value % 9 WHEN 0 THEN 0 WHEN 1 THEN 1 WHEN 2 THEN -value WHEN 3 THEN value * 1000
				WHEN 4 THEN value * 100000 WHEN 5 THEN value * 10000000000 WHEN 6 THEN -value * 1000000000000000
				ELSE value / 2 END,
			printf('b%d', value), CASE WHEN value % 7 = 0 THEN NULL ELSE value * 11 END,
			CASE WHEN value % 50 = 0 THEN randomblob(3000) ELSE x'01' END, value - 500
			FROM generate_series(1, 3000)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pages [][]byte
	for off := 0; off < len(img); off += 1024 {
		pages = append(pages, img[off:off+1024])
	}
	return pages, db
}

// TestRecordReadsWhatSQLiteWrote: every row of every table leaf reads as
// SQLite stores it (rowid, integer columns, nothing for NULL, text, blob,
// or a column past an overflowing blob); going down the table by rowid
// and the index by its integer leads to the leaf that holds the key, and
// that index leaf gives the rowids of the key's rows.
func TestRecordReadsWhatSQLiteWrote(t *testing.T) {
	pages, db := recordDB(t)
	type row struct {
		a  int64
		c  sql.NullInt64
		e  int64
		ok bool
	}
	want := map[int64]row{}
	rows, err := db.Query(`SELECT id, a, c, e FROM r`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var r row
		if err := rows.Scan(&id, &r.a, &r.c, &r.e); err != nil {
			t.Fatal(err)
		}
		want[id] = r
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	page := func(pgno uint32) treePage { return treePage{data: pages[pgno-1], pgno: pgno, usable: 1024} }

	seen, spilled := 0, 0
	for i := range pages {
		p := page(uint32(i + 1))
		if p.kind() != btreeLeafTable || i == 0 {
			continue
		}
		lo, hi, ok := p.keyRange()
		if !ok {
			t.Fatalf("page %d: no key range", i+1)
		}
		for j := range p.cells() {
			id, cols, ok := p.leafRow(j)
			w, found := want[id]
			if !ok || !found || id < lo || id > hi {
				t.Fatalf("page %d row %d: rowid %d (%v), in the table %v, range %d-%d", i+1, j, id, ok, found, lo, hi)
			}
			seen++
			// Columns: 0 id (NULL: the rowid), 1 a, 2 b, 3 c, 4 d, 5 e.
			if cols.ok&1 != 0 || cols.ok&(1<<2) != 0 || cols.ok&(1<<1) == 0 || cols.vals[1] != w.a {
				t.Fatalf("rowid %d: columns %v, want a=%d and no integer for id or b", id, cols, w.a)
			}
			if got := cols.ok&(1<<3) != 0; got != w.c.Valid || (got && cols.vals[3] != w.c.Int64) {
				t.Fatalf("rowid %d: c read %v %d, want %v", id, got, cols.vals[3], w.c)
			}
			if id%150 == 0 { // its blob overflows: e lies on an overflow page
				spilled++
				if cols.ok&(1<<5) != 0 && cols.vals[5] != w.e {
					t.Fatalf("rowid %d: e read %d past an overflowing blob, want %d or nothing", id, cols.vals[5], w.e)
				}
			} else if cols.ok&(1<<5) == 0 || cols.vals[5] != w.e {
				t.Fatalf("rowid %d: e %v, want %d", id, cols, w.e)
			}
		}
	}
	if seen != len(want) || spilled == 0 {
		t.Fatalf("read %d rows of %d (%d spilled)", seen, len(want), spilled)
	}

	roots := map[string]uint32{}
	if err := func() error {
		rows, err := db.Query(`SELECT name, rootpage FROM sqlite_schema`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var root uint32
			if err := rows.Scan(&name, &root); err != nil {
				return err
			}
			roots[name] = root
		}
		return rows.Err()
	}(); err != nil {
		t.Fatal(err)
	}
	down := func(root uint32, key int64) treePage {
		p := page(root)
		for p.kind() == btreeInteriorTable || p.kind() == btreeInteriorIndex {
			child, ok := p.childFor(key)
			if !ok {
				t.Fatalf("page %d: no child for %d", p.pgno, key)
			}
			p = page(child)
		}
		return p
	}
	keys, whole := 0, 0
	for id, w := range want {
		leaf := down(roots["r"], id)
		if lo, hi, ok := leaf.keyRange(); !ok || id < lo || id > hi {
			t.Fatalf("rowid %d led to leaf %d (%d-%d)", id, leaf.pgno, lo, hi)
		}
		if id%30 != 0 {
			continue
		}
		var ids []int64
		if err := func() error {
			rows, err := db.Query(`SELECT id FROM r WHERE a = ? ORDER BY id`, w.a)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return err
				}
				ids = append(ids, id)
			}
			return rows.Err()
		}(); err != nil {
			t.Fatal(err)
		}
		got := down(roots["r_a"], w.a).rowidsOf(w.a, nil)
		// A key that also sits in an interior cell, or runs on to the next
		// leaf, gives some of its rows (or none); each one given is one of
		// them.
		if len(got) > joinMaxRowids {
			t.Fatalf("a=%d: the index leaf gave %d rowids, more than %d", w.a, len(got), joinMaxRowids)
		}
		if len(ids) <= joinMaxRowids {
			keys++
			if slices.Equal(got, ids) {
				whole++
			}
		}
		for _, g := range got {
			if !slices.Contains(ids, g) {
				t.Fatalf("a=%d: the index leaf gave %v, want among %v", w.a, got, ids)
			}
		}
	}
	if keys == 0 || whole*10 < keys*9 {
		t.Fatalf("the index leaf gave all the rows of %d keys of %d", whole, keys)
	}
	t.Logf("the index leaf gave all the rows of %d keys of %d", whole, keys)
}

// FuzzTreePage: reading any bytes as a B-tree page never panics, and a
// child it names is one of the page's children.
func FuzzTreePage(f *testing.F) {
	pages, _ := recordDB(f)
	for _, p := range pages[1:12] {
		f.Add(p, int64(100))
	}
	f.Add([]byte{0x0d, 0, 0, 0, 1, 0, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, int64(-1))
	f.Fuzz(func(t *testing.T, data []byte, key int64) {
		p := treePage{data: data, pgno: 2, usable: max(len(data), 480)}
		p.keyRange()
		for i := range min(p.cells(), 64) {
			p.leafRow(i)
		}
		p.rowidsOf(key, nil)
		if child, ok := p.childFor(key); ok && !isChild(data, 2, child) {
			t.Fatalf("childFor(%d) = %d, not a child of the page", key, child)
		}
		recordInts(data)
		_ = fmt.Sprint(varint(data))
	})
}

// BenchmarkJoinGuess: what a missed leaf costs the join's readahead when
// it is no join's lookup: the rows of the leaves kept read for a key in
// its range (joinOuters leaves of small rows, none matching).
func BenchmarkJoinGuess(b *testing.B) {
	pages, _ := recordDB(b)
	var jr joinRun
	for _, p := range pages[1:] {
		if p[0] == btreeLeafTable {
			jr.keep(treePage{data: p, pgno: 2, usable: 1024})
			jr.keep(treePage{data: p, pgno: 3, usable: 1024}) // not the same page as the last
		}
	}
	rows := 0
	for _, o := range jr.outers {
		rows += o.cells()
	}
	for b.Loop() {
		if gs := jr.guess(1<<60, 1<<61); len(gs) != 0 {
			b.Fatal(gs)
		}
	}
	b.ReportMetric(float64(rows), "rows-kept")
}
