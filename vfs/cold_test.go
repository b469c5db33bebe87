package vfs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// coldSource is a replica of a table of 20,000 rows in 1 KiB pages (B-trees
// three levels deep) and an index on a hashed key, as a snapshot with its
// hint, then an update.
func coldSource(t *testing.T) *source {
	t.Helper()
	src := newSource(t, 1024)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB)`)
	src.exec(`CREATE INDEX t_k ON t(k)`)
	src.exec(`INSERT INTO t(id, k, v) SELECT value, printf('k%08x', (value*2654435761) % 4294967296), randomblob(80) FROM generate_series(1, 20000)`)
	src.snapshot()
	if err := writeColdHint(src.dir); err != nil {
		t.Fatal(err)
	}
	src.exec(`UPDATE t SET v = x'00' WHERE id = 7`)
	return src
}

func attachCold(t *testing.T, client storage.Client, tune coldTuning) *sql.DB {
	db, _ := attachColdNamed(t, client, tune)
	return db
}

func attachColdNamed(t *testing.T, client storage.Client, tune coldTuning) (*sql.DB, *replica) {
	t.Helper()
	name := fmt.Sprintf("cold-test-%d", coldSeq.Add(1))
	attachTunedT(t, name, Options{Client: client, Poll: time.Hour}, tune)
	db := openDB(t, "file:"+name+"?vfs=ltx")
	db.SetMaxOpenConns(1)
	registryMu.Lock()
	defer registryMu.Unlock()
	return db, replicas[attachKey(name)]
}

// TestColdLookupsUseTheHint: with the snapshot's hint read at open, a point
// lookup reads only its leaf page; without hints (nor the walk, which
// finds the interior pages itself: see TestWalkFindsInteriorPages) it
// reads the interior pages on the way. The rows are those of the primary
// either way.
func TestColdLookupsUseTheHint(t *testing.T) {
	src := coldSource(t)
	for _, tt := range []struct {
		name string
		tune coldTuning
		want func(int64) bool
	}{
		{"with hints", coldTuning{}, func(n int64) bool { return n == 1 }},
		{"without", coldTuning{noHints: true, noWalk: true}, func(n int64) bool { return n >= 2 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			counting := wrap.NewCounting(src.client)
			db := attachCold(t, counting, tt.tune)
			c := conn(t, db)
			if got := one[int64](t, c, `SELECT count(*) FROM sqlite_schema`); got != 2 {
				t.Fatalf("schema: %d entries", got)
			}
			for _, id := range []int{12345, 777, 19999} {
				counting.Reset()
				var got, want []byte
				if err := c.QueryRowContext(context.Background(), `SELECT v FROM t WHERE id = ?`, id).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if err := src.db.QueryRow(`SELECT v FROM t WHERE id = ?`, id).Scan(&want); err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Fatalf("row %d differs from the primary", id)
				}
				if n := counting.Counts().Requests(); !tt.want(n) {
					t.Fatalf("cold lookup of row %d: %d requests", id, n)
				}
			}
		})
	}
}

// TestReadaheadScan: a scan in rowid order reads ahead, many pages a
// request, and returns what the primary holds.
func TestReadaheadScan(t *testing.T) {
	src := coldSource(t)
	const q = `SELECT count(*), sum(length(v)), sum(id) FROM t`
	var want [3]int64
	if err := src.db.QueryRow(q).Scan(&want[0], &want[1], &want[2]); err != nil {
		t.Fatal(err)
	}
	pages := int64(len(src.pages.Image()) / 1024)
	for _, tt := range []struct {
		name string
		tune coldTuning
	}{{"readahead", coldTuning{}}, {"none", coldTuning{noReadahead: true}}} {
		t.Run(tt.name, func(t *testing.T) {
			counting := wrap.NewCounting(src.client)
			db := attachCold(t, counting, tt.tune)
			var got [3]int64
			if err := db.QueryRow(q).Scan(&got[0], &got[1], &got[2]); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("scan: %v, the primary says %v", got, want)
			}
			opens := counting.Counts().Opens
			t.Logf("%s: %d reads for a database of %d pages", tt.name, opens, pages)
			if tt.tune.noReadahead && opens < pages/2 {
				t.Fatalf("without readahead, %d reads for %d pages: the test does not scan", opens, pages)
			}
			if !tt.tune.noReadahead && opens > pages/20 {
				t.Fatalf("with readahead, %d reads for %d pages", opens, pages)
			}
		})
	}
}

// TestReadaheadFitsTheCache: with a cache far smaller than the table, a
// scan's reads ahead stay within the share of the budget the cache keeps
// for pages read once, so none is pushed out before SQLite reads it: the
// scan reads no more from storage than with a cache that holds everything.
func TestReadaheadFitsTheCache(t *testing.T) {
	src := coldSource(t)
	const q = `SELECT count(*), sum(length(v)) FROM t`
	read := map[int64]int64{}
	for _, budget := range []int64{64 << 20, 256 << 10} {
		counting := wrap.NewCounting(src.client)
		name := fmt.Sprintf("cold-fit-%d", coldSeq.Add(1))
		attach(t, name, Options{Client: counting, Poll: time.Hour, CacheBytes: budget})
		db := openDB(t, "file:"+name+"?vfs=ltx")
		var n, sum int64
		if err := db.QueryRow(q).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		if n != 20000 {
			t.Fatalf("cache of %d bytes: %d rows", budget, n)
		}
		read[budget] = counting.Counts().BytesRead
	}
	t.Logf("bytes read: %v", read)
	if small, big := read[256<<10], read[64<<20]; small > big+big/10 {
		t.Fatalf("a scan with a cache of 256 KiB read %d bytes, %d with 64 MiB: pages read ahead were dropped before use", small, big)
	}
}

// bigReadsFail, once armed, fails every ranged read larger than 16 KiB:
// reads ahead fail, reads of one page do not.
type bigReadsFail struct {
	storage.Client
	armed atomic.Bool
}

func (c *bigReadsFail) OpenLTXFile(ctx context.Context, level int, min, max ltx.TXID, off, size int64) (io.ReadCloser, error) {
	if c.armed.Load() && size > 16<<10 {
		return nil, errors.New("injected failure of a large read")
	}
	return c.Client.OpenLTXFile(ctx, level, min, max, off, size)
}

// TestReadaheadFailuresFailNothing: a scan whose reads ahead all fail reads
// its pages one by one and succeeds.
func TestReadaheadFailuresFailNothing(t *testing.T) {
	src := coldSource(t)
	failing := &bigReadsFail{Client: src.client}
	db, r := attachColdNamed(t, failing, coldTuning{})
	c := conn(t, db) // opened: the page indexes are read
	failing.armed.Store(true)
	if got := one[int64](t, c, `SELECT count(*) FROM t WHERE length(v) > 0`); got != 20000 {
		t.Fatalf("scan: %d rows", got)
	}
	if n := r.cache.Stats().ReadaheadErrors; n == 0 {
		t.Fatal("no read ahead failed: the test does not test them")
	}
}

// TestReadaheadEndsWithTheReplica: reads ahead under way when the last
// connection closes end with the replica: no goroutine is left behind.
func TestReadaheadEndsWithTheReplica(t *testing.T) {
	src := coldSource(t)
	before := runtime.NumGoroutine()
	slow := wrap.NewFaulty(src.client, wrap.FaultyConfig{Open: wrap.Behaviour{FirstByte: 20 * time.Millisecond}})
	name := "cold-leak"
	if err := Attach(name, Options{Client: slow, Poll: time.Hour}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+name+"?vfs=ltx")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT id FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000 && rows.Next(); i++ { // well into the scan: reads ahead are under way
	}
	rows.Close()
	db.Close()
	Detach(name)
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDiskCacheSurvivesARestart: with a disk tier, a process that opens the
// replica again reads the pages an earlier one read from disk, not from
// storage.
func TestDiskCacheSurvivesARestart(t *testing.T) {
	src := coldSource(t)
	tier := t.TempDir()
	ids := []int{5, 333, 4444, 15000, 19999}
	run := func() int64 {
		counting := wrap.NewCounting(src.client)
		name := fmt.Sprintf("cold-disk-%d", coldSeq.Add(1))
		if err := Attach(name, Options{Client: counting, Poll: time.Hour, DiskCacheDir: tier, DiskCacheBytes: 1 << 20}); err != nil {
			t.Fatal(err)
		}
		defer Detach(name)
		db, err := sql.Open("sqlite3", "file:"+name+"?vfs=ltx")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		c := conn(t, db)
		defer c.Close()
		counting.Reset()
		for _, id := range ids {
			var got, want []byte
			if err := c.QueryRowContext(context.Background(), `SELECT v FROM t WHERE id = ?`, id).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if err := src.db.QueryRow(`SELECT v FROM t WHERE id = ?`, id).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("row %d differs from the primary", id)
			}
		}
		return counting.Counts().Opens
	}
	if first := run(); first == 0 {
		t.Fatalf("first process: no read for %d cold lookups: the test tests nothing", len(ids))
	}
	if again := run(); again != 0 {
		t.Fatalf("a process started again read %d pages from storage, want 0 (all on disk)", again)
	}
}

func TestDiskCacheParams(t *testing.T) {
	p, err := parseParams(url.Values{"diskcache": {"/var/cache/ltx"}, "diskcache_size": {"2GiB"}}, time.Now())
	if err != nil || p.diskDir != "/var/cache/ltx" || p.diskBytes != 2<<30 {
		t.Fatalf("%+v, %v", p, err)
	}
	for q, want := range map[string]string{
		"diskcache=":                       "diskcache= is empty",
		"diskcache_size=1GiB":              "without diskcache=DIR",
		"diskcache=/x&diskcache_size=":     "diskcache_size=",
		"diskcache=/x&diskcache_size=lots": "diskcache_size=lots",
	} {
		v, _ := url.ParseQuery(q)
		if _, err := parseParams(v, time.Now()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", q, err, want)
		}
	}
	if err := Attach("cold-disk-bad", Options{URL: "/nonexistent", DiskCacheDir: "/proc/version/x"}); err == nil {
		Detach("cold-disk-bad")
		t.Fatal("a disk cache directory that cannot be made was accepted")
	}
}
