package vfs

import (
	"sync"
	"testing"

	"github.com/ltxvfs/ltxvfs/storage"
)

// joinSource is a table c of 20,000 rows in 1 KiB pages, with an index on
// a unique integer code in random order, a table o whose rows point to
// rows of c in random order, by rowid and (to other rows) by code, and a
// table w of wide rows pointing to rows of c by rowid: a join of o or w to
// c
// looks up one leaf of c (or of its index) per row of o, in no order.
func joinSource(t *testing.T) *source {
	t.Helper()
	joinShared.once.Do(func() {
		src := newSource(&keptTB{TB: t}, 1024)
		src.exec(`CREATE TABLE c(id INTEGER PRIMARY KEY, code INTEGER, pad BLOB)`)
		src.exec(`CREATE INDEX c_code ON c(code)`)
		src.exec(`CREATE TABLE o(id INTEGER PRIMARY KEY, note TEXT, c_id INTEGER, c_code INTEGER)`)
		src.exec(`INSERT INTO c(id, code, pad) SELECT value, (value*2654435761) % 4294967296, randomblob(80) FROM generate_series(1, 20000)`)
		src.exec(`INSERT INTO o(id, note, c_id, c_code) SELECT value, printf('n%d', value), (value*7919) % 20000 + 1, (((value*104729) % 20000 + 1)*2654435761) % 4294967296 FROM generate_series(1, 2000)`)
		src.exec(`CREATE TABLE w(id INTEGER PRIMARY KEY, pad TEXT, c_id INTEGER)`)
		src.exec(`INSERT INTO w(id, pad, c_id) SELECT value, printf('%.200c', 'w'), (value*7919) % 20000 + 1 FROM generate_series(1, 2000)`)
		src.snapshot()
		if err := writeColdHint(src.dir); err != nil {
			t.Fatal(err)
		}
		joinShared.src = src
	})
	if joinShared.src == nil {
		t.Fatal("the shared source failed")
	}
	return joinShared.src
}

var joinShared struct {
	once sync.Once
	src  *source
}

// TestJoinReadsAhead: a join whose inner rows are in no order is read
// ahead from the outer rows' keys: by rowid, on our writer's replica and
// on one without hints (as Litestream writes it), the join takes a few
// round trips where it took one per outer row; by an integer index, the
// index leaves are read ahead and the table rows cost one round trip each
// instead of two. The rows are the primary's.
func TestJoinReadsAhead(t *testing.T) {
	src := joinSource(t)
	queries := []struct {
		name, sql string
		most      float64 // round trips read ahead ÷ without, at most
	}{
		{"by rowid", `SELECT count(*), sum(length(c.pad)) FROM o JOIN c ON c.id = o.c_id WHERE o.id BETWEEN 100 AND 399`, 0.25},
		{"by index", `SELECT count(*), sum(length(c.pad)) FROM o JOIN c ON c.code = o.c_code WHERE o.id BETWEEN 100 AND 399`, 0.25},
		// Four outer rows a leaf: the outer table's leaves are read ahead
		// in page order once the join's lookups no longer miss.
		{"wide outer rows", `SELECT count(*), sum(length(c.pad)) FROM w JOIN c ON c.id = w.c_id WHERE w.id BETWEEN 100 AND 399`, 0.25},
	}
	for _, kind := range []struct {
		name   string
		client storage.Client
	}{{"hinted", src.client}, {"without hints", litestreamShaped{src.client}}} {
		for _, q := range queries {
			t.Run(kind.name+"/"+q.name, func(t *testing.T) {
				var want [2]int64
				if err := src.db.QueryRow(q.sql).Scan(&want[0], &want[1]); err != nil {
					t.Fatal(err)
				}
				cost := map[bool]Stats{}
				for _, join := range []bool{false, true} {
					db := attachCold(t, kind.client, coldTuning{noJoin: !join})
					c := conn(t, db)
					if got := one[int64](t, c, `SELECT count(*) FROM sqlite_schema`); got != 4 {
						t.Fatalf("schema: %d entries", got)
					}
					var got [2]int64
					if err := c.QueryRowContext(t.Context(), q.sql).Scan(&got[0], &got[1]); err != nil {
						t.Fatal(err)
					}
					if got != want {
						t.Fatalf("join read ahead %v: %v, the primary says %v", join, got, want)
					}
					cost[join] = statsOf(t, c)
				}
				t.Logf("%d rows joined: without reading ahead %v; read ahead %v", want[0], cost[false], cost[true])
				if want[0] != 300 || cost[false].RoundTrips < 250 {
					t.Fatalf("%d rows, %v without reading ahead: the join does not look up enough leaves to test", want[0], cost[false])
				}
				if float64(cost[true].RoundTrips) > q.most*float64(cost[false].RoundTrips) {
					t.Fatalf("read ahead: %v; without: %v; want at most %.1f× the round trips", cost[true], cost[false], q.most)
				}
			})
		}
	}
}
