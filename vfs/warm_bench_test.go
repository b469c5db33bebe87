package vfs

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkWarmRandomPointQuery is the warm point lookup as users feel it:
// a prepared statement, random keys over the whole ~100 MB database, which
// is far bigger than SQLite's own page cache (the same default cache_size
// for every VFS), so most lookups read a leaf page through the VFS. For
// ltx every page is in the shared page cache (warmed by a full scan); for
// the default VFS on a local file, in the OS page cache. Compare ns/op of
// ltx with os (read-only) and os-immutable (immutable=1) in the same run.
func BenchmarkWarmRandomPointQuery(b *testing.B) {
	src := benchSource(b)
	queries := map[string]string{
		"rowid": `SELECT k FROM t WHERE id = ?`,
		"index": `SELECT id FROM t WHERE k = printf('key-%08d', ?)`,
	}
	run := func(b *testing.B, db *sql.DB, query string) {
		db.SetMaxOpenConns(1)
		ctx := context.Background()
		c, err := db.Conn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		// A full scan of the table and of the index: every page has been
		// read once (into ltx's page cache, or the OS's).
		var n int64
		for _, q := range []string{`SELECT sum(length(payload)) FROM t`, `SELECT count(*) FROM t WHERE k >= ''`} {
			if err := c.QueryRowContext(ctx, q).Scan(&n); err != nil {
				b.Fatal(err)
			}
		}
		stmt, err := c.PrepareContext(ctx, query)
		if err != nil {
			b.Fatal(err)
		}
		defer stmt.Close()
		rng := rand.New(rand.NewPCG(1, 2))
		var v any
		for b.Loop() {
			if err := stmt.QueryRowContext(ctx, rng.IntN(benchRows)+1).Scan(&v); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, name := range []string{"rowid", "index"} {
		query := queries[name]
		b.Run(name+"/ltx", func(b *testing.B) {
			attached := fmt.Sprintf("warm-bench-%d", time.Now().UnixNano())
			if err := Attach(attached, Options{Client: src.client, Poll: time.Second, CacheBytes: 512 << 20}); err != nil {
				b.Fatal(err)
			}
			defer Detach(attached)
			db, err := sql.Open("sqlite3", "file:"+attached+"?vfs=ltx")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			run(b, db, query)
		})
		b.Run(name+"/os", func(b *testing.B) {
			db, err := sql.Open("sqlite3", "file:"+src.path+"?mode=ro")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			run(b, db, query)
		})
		b.Run(name+"/os-immutable", func(b *testing.B) {
			db, err := sql.Open("sqlite3", "file:"+src.path+"?mode=ro&immutable=1")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			run(b, db, query)
		})
	}
}

// BenchmarkWarmRatio runs the warm point lookups of
// BenchmarkWarmRandomPointQuery through ltx, the default VFS read-only and
// the default VFS with immutable=1 in alternating batches of the same
// random keys, so that all three see the same moment of a shared, noisy
// machine. It reports each one's time per query and ltx's throughput
// relative to the other two (above 1: ltx is faster).
func BenchmarkWarmRatio(b *testing.B) {
	src := benchSource(b)
	for _, name := range []string{"rowid", "index"} {
		b.Run(name, func(b *testing.B) {
			query := map[string]string{
				"rowid": `SELECT k FROM t WHERE id = ?`,
				"index": `SELECT id FROM t WHERE k = printf('key-%08d', ?)`,
			}[name]
			ctx := context.Background()
			attached := fmt.Sprintf("warm-ratio-%d", time.Now().UnixNano())
			if err := Attach(attached, Options{Client: src.client, Poll: time.Second, CacheBytes: 512 << 20}); err != nil {
				b.Fatal(err)
			}
			defer Detach(attached)
			var stmts [3]*sql.Stmt
			for i, dsn := range []string{"file:" + attached + "?vfs=ltx", "file:" + src.path + "?mode=ro", "file:" + src.path + "?mode=ro&immutable=1"} {
				db, err := sql.Open("sqlite3", dsn)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				db.SetMaxOpenConns(1)
				var n int64
				for _, q := range []string{`SELECT sum(length(payload)) FROM t`, `SELECT count(*) FROM t WHERE k >= ''`} {
					if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
						b.Fatal(err)
					}
				}
				if stmts[i], err = db.PrepareContext(ctx, query); err != nil {
					b.Fatal(err)
				}
				defer stmts[i].Close()
			}
			const batch = 200
			var spent [3]time.Duration
			rng := rand.New(rand.NewPCG(1, 2))
			keys := make([]int, batch)
			var v any
			for i := 0; b.Loop(); i++ {
				for j := range keys {
					keys[j] = rng.IntN(benchRows) + 1
				}
				for k := range 3 {
					which := (i + k) % 3
					start := time.Now()
					for _, key := range keys {
						if err := stmts[which].QueryRowContext(ctx, key).Scan(&v); err != nil {
							b.Fatal(err)
						}
					}
					spent[which] += time.Since(start)
				}
			}
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N*batch) }
			b.ReportMetric(per(spent[0]), "ltx-ns/query")
			b.ReportMetric(per(spent[1]), "os-ns/query")
			b.ReportMetric(per(spent[2]), "immutable-ns/query")
			b.ReportMetric(float64(spent[1])/float64(spent[0]), "ltx/os")
			b.ReportMetric(float64(spent[2])/float64(spent[0]), "ltx/immutable")
			b.ReportMetric(0, "ns/op")
		})
	}
}
