package vfs

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// benchRows of ~1 KiB make a database of about 100 MB, replicated as ten
// L0 files and one L1 compaction of them.
const (
	benchRows    = 72_000
	benchBatches = 10
	benchHot     = 100 // distinct keys the warm queries cycle through
)

var bench struct {
	once sync.Once
	src  *source
	dirs []string
}

func benchSource(b *testing.B) *source {
	b.Helper()
	bench.once.Do(func() {
		// The source outlives this benchmark: TempDir and Cleanup of the
		// first caller would remove it under the next one.
		src := newSource(&keptTB{TB: b}, 4096)
		src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, payload BLOB)`)
		for i := range benchBatches {
			lo := i*benchRows/benchBatches + 1
			src.exec(`INSERT INTO t(id, k, payload) SELECT value, printf('key-%08d', value), randomblob(1000) FROM generate_series(?, ?)`,
				lo, lo+benchRows/benchBatches-1)
		}
		src.exec(`CREATE INDEX t_k ON t(k)`)
		src.compact(1, 1, src.pages.TXID())
		bench.src = src
	})
	if bench.src == nil {
		b.Fatal("benchmark source failed")
	}
	return bench.src
}

// keptTB keeps a shared source's files for the life of the test binary
// (TestMain removes them).
type keptTB struct{ testing.TB }

func (t *keptTB) TempDir() string {
	dir, err := os.MkdirTemp("", "ltxvfs-kept-")
	if err != nil {
		t.TB.Fatal(err)
	}
	bench.dirs = append(bench.dirs, dir)
	return dir
}

func (t *keptTB) Cleanup(func()) {}

// BenchmarkWarmPointQuery compares a warm point query by rowid through the
// ltx VFS with the same database through the default VFS (a local file,
// read-only, and immutable=1). It also reports, for ltx, the storage
// requests of opening the database and of the first (cold) point query.
func BenchmarkWarmPointQuery(b *testing.B) {
	src := benchSource(b)
	ids := rand.New(rand.NewPCG(1, 2)).Perm(benchRows)[:benchHot]

	run := func(b *testing.B, db *sql.DB, warmed func()) {
		db.SetMaxOpenConns(1)
		ctx := context.Background()
		c, err := db.Conn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		var k string
		for _, id := range ids { // warm SQLite's page cache (and ltx's)
			if err := c.QueryRowContext(ctx, `SELECT k FROM t WHERE id = ?`, id+1).Scan(&k); err != nil {
				b.Fatal(err)
			}
		}
		warmed()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if err := c.QueryRowContext(ctx, `SELECT k FROM t WHERE id = ?`, ids[i%benchHot]+1).Scan(&k); err != nil {
				b.Fatal(err)
			}
		}
	}

	b.Run("ltx", func(b *testing.B) {
		counting := wrap.NewCounting(src.client)
		name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
		if err := Attach(name, Options{Client: counting, Poll: time.Hour}); err != nil {
			b.Fatal(err)
		}
		defer Detach(name)
		db, err := sql.Open("sqlite3", "file:"+name+"?vfs=ltx")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		c, err := db.Conn(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		open := counting.Counts()
		counting.Reset()
		var k string
		if err := c.QueryRowContext(context.Background(), `SELECT k FROM t WHERE id = ?`, benchRows/3).Scan(&k); err != nil {
			b.Fatal(err)
		}
		cold := counting.Counts()
		c.Close()
		if fi, err := os.Stat(src.path); err == nil {
			b.Logf("database: %.0f MB, TXID %d, %d storage requests to open, %d for the first point query", float64(fi.Size())/1e6, src.pages.TXID(), open.Requests(), cold.Requests())
		}

		run(b, db, counting.Reset)
		warm := counting.Counts()
		b.ReportMetric(float64(open.Requests()), "open-requests")
		b.ReportMetric(float64(cold.Requests()), "cold-point-requests")
		b.ReportMetric(float64(warm.Requests())/float64(b.N), "requests/op")
	})
	b.Run("os", func(b *testing.B) {
		db, err := sql.Open("sqlite3", "file:"+src.path+"?mode=ro")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		run(b, db, func() {})
	})
	b.Run("os-immutable", func(b *testing.B) {
		db, err := sql.Open("sqlite3", "file:"+src.path+"?mode=ro&immutable=1")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		run(b, db, func() {})
	})
}
