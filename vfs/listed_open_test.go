package vfs

import (
	"context"
	"testing"

	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// TestListedOpenListsOnce: a replica without a manifest (as Litestream
// writes it), with files in four levels, is opened through the VFS with
// one listing of its LTX files and one of its hints, not one listing per
// level, and so is it polled when the poll lists; the rows are the
// primary's.
func TestListedOpenListsOnce(t *testing.T) {
	src := newSource(t, 1024)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)                        // 1
	src.exec(`INSERT INTO t(id, v) SELECT value, 'a' FROM generate_series(1, 200)`)   // 2
	src.snapshot()                                                                    // L9 1-2
	src.exec(`UPDATE t SET v = 'b' WHERE id <= 100`)                                  // 3
	src.exec(`UPDATE t SET v = 'c' WHERE id <= 50`)                                   // 4
	src.exec(`INSERT INTO t(id, v) SELECT value, 'd' FROM generate_series(201, 300)`) // 5
	src.compact(1, 3, 4)                                                              // L1 3-4
	src.compact(2, 3, 5)                                                              // L2 3-5
	src.exec(`UPDATE t SET v = 'e' WHERE id = 300`)                                   // 6

	counting := wrap.NewCounting(src.client)
	db, r := attachColdNamed(t, counting, coldTuning{})
	c := conn(t, db)
	check := func(when string, want map[string]int64) {
		t.Helper()
		rows, err := c.QueryContext(context.Background(), `SELECT v, count(*) FROM t GROUP BY v`)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		defer rows.Close()
		got := map[string]int64{}
		for rows.Next() {
			var v string
			var n int64
			if err := rows.Scan(&v, &n); err != nil {
				t.Fatal(err)
			}
			got[v] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: rows by value %v, want %v", when, got, want)
		}
		for v, n := range want {
			if got[v] != n {
				t.Fatalf("%s: rows by value %v, want %v", when, got, want)
			}
		}
	}
	check("after the open", map[string]int64{"a": 100, "b": 50, "c": 50, "d": 99, "e": 1})
	if n := counting.Counts(); n.Lists != 1 || n.ObjectLists != 1 {
		t.Fatalf("open of a replica with files in levels 0, 1, 2 and 9: %d listings of LTX files, %d of objects; want 1 and 1", n.Lists, n.ObjectLists)
	}

	src.exec(`UPDATE t SET v = 'f' WHERE id = 1`) // 7
	counting.Reset()
	if err := r.pollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("after a poll", map[string]int64{"a": 100, "b": 50, "c": 49, "d": 99, "e": 1, "f": 1})
	if n := counting.Counts(); n.Lists != 1 || n.ObjectLists != 1 {
		t.Fatalf("poll that lists: %d listings of LTX files, %d of objects; want 1 and 1", n.Lists, n.ObjectLists)
	}
}
