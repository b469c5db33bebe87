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
