package vfs

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// badInputsTried counts the bad inputs of this package's tables; each
// table logs its count (-v).
var badInputsTried int

// queryErr runs a query to the end and returns its error, or the rows it
// read as an error when there was none (so that a test can say what it got).
func queryErr(db *sql.DB, query string) (rows []int64, err error) {
	rs, err := db.QueryContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var v int64
		if err := rs.Scan(&v); err != nil {
			return rows, err
		}
		rows = append(rows, v)
	}
	return rows, rs.Err()
}

// TestBadDSNParameters: every bad URI parameter fails the open with an
// error naming the parameter and its value; none opens at a TXID other than
// the one asked for. The replica: TXID n holds n-1 rows, for n = 1..6;
// retention removed TXIDs 1..3, so that only the snapshot at 6 starts a
// chain.
func TestBadDSNParameters(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY)`)
	for i := 1; i <= 5; i++ {
		src.exec(`INSERT INTO t(id) VALUES (?)`, i)
	}
	src.snapshot()
	src.remove(0, [2]ltx.TXID{1, 1}, [2]ltx.TXID{2, 2}, [2]ltx.TXID{3, 3})
	replica := "replica=" + url.QueryEscape(src.dir)
	dsn := func(params ...string) string { return "file:app.db?vfs=ltx&" + strings.Join(params, "&") }
	retained := src.timeOf(6).Add(-1) // before the oldest TXID restorable

	for _, tt := range []struct {
		dsn  string
		want []string
	}{
		// replica=
		{dsn(), []string{"replica=", `"app.db"`}},
		{dsn("replica="), []string{"replica= is empty"}},
		{dsn("replica=%20"), []string{"replica= is empty"}},
		{dsn("replica=" + url.QueryEscape("ftp://host/dir")), []string{"replica=ftp://host/dir", `unknown scheme "ftp"`}},
		{dsn("replica=" + url.QueryEscape("s3:/bucket/db")), []string{"replica=s3:/bucket/db", "missing a slash"}},
		{dsn("replica=" + url.QueryEscape("s3://")), []string{"bucket required"}},
		{dsn("replica=" + url.QueryEscape("s3://b/p?regoin=x")), []string{`"regoin"`}},
		{dsn("replica=" + url.QueryEscape("file://host/dir")), []string{"replica=file://host/dir"}},
		{dsn("replica=" + url.QueryEscape(filepath.Join(t.TempDir(), "nowhere"))), []string{"nowhere", "no LTX files"}},
		{dsn("replica=" + url.QueryEscape(t.TempDir())), []string{"no LTX files"}},
		{dsn("replcia=" + url.QueryEscape(src.dir)), []string{"replcia", "replica"}},
		{dsn(replica, "replica="+url.QueryEscape(src.dir)), []string{"replica given 2 times"}},
		// txid=
		{dsn(replica, "txid=abc"), []string{`txid "abc"`}},
		{dsn(replica, "txid=0"), []string{`txid "0"`, "start at 1"}},
		{dsn(replica, "txid=-1"), []string{`txid "-1"`}},
		{dsn(replica, "txid=1.5"), []string{`txid "1.5"`}},
		{dsn(replica, "txid=18446744073709551616"), []string{`txid "18446744073709551616"`, "out of range"}},
		{dsn(replica, "txid=99"), []string{"txid=99", "beyond the latest"}},
		{dsn(replica, "txid=2"), []string{"txid=2", "not restorable"}},
		{dsn(replica, "txid=4"), []string{"txid=4", "not restorable"}},
		{dsn(replica, "txid=4", "txid=5"), []string{"txid given 2 times"}},
		{dsn(replica, "txdi=4"), []string{"txdi", "txid"}},
		{dsn(replica, "TXID=4"), []string{"TXID", "txid"}},
		// time=
		{dsn(replica, "time=yesterday"), []string{`time "yesterday"`}},
		{dsn(replica, "time=%2B5m"), []string{`time "+5m"`}},
		{dsn(replica, "time=2025-13-01T00:00:00Z"), []string{`time "2025-13-01T00:00:00Z"`}},
		{dsn(replica, "time=2001-01-01T00:00:00Z"), []string{"time=2001-01-01T00:00:00Z", "not restorable"}},
		{dsn(replica, "time="+url.QueryEscape(retained.Format(ltx.RFC3339Milli))), []string{"time=" + retained.Format(ltx.RFC3339Milli)}},
		{dsn(replica, "time=-5m", "txid=4"), []string{"txid=4", "time=-5m"}},
		{dsn(replica, "tiem=-5m"), []string{"tiem", "time"}},
		// poll= and pagecache=
		{dsn(replica, "poll=-1s"), []string{"poll=-1s"}},
		{dsn(replica, "poll=0"), []string{"poll=0"}},
		{dsn(replica, "poll=abc"), []string{"poll=abc"}},
		{dsn(replica, "poll=1"), []string{"poll=1"}},
		{dsn(replica, "pagecache=xyz"), []string{"pagecache=xyz"}},
		{dsn(replica, "pagecache=-5"), []string{"pagecache=-5"}},
		{dsn(replica, "pagecache=0"), []string{"pagecache=0"}},
		{dsn(replica, "pagecache=1e9"), []string{"pagecache=1e9"}},
		{dsn(replica, "pagecahce=1GiB"), []string{"pagecahce", "pagecache"}},
		// max_requests= and max_bytes=
		{dsn(replica, "max_requests=0"), []string{"max_requests=0", "at least 1"}},
		{dsn(replica, "max_requests=-3"), []string{"max_requests=-3"}},
		{dsn(replica, "max_requests=lots"), []string{"max_requests=lots"}},
		{dsn(replica, "max_requests=1.5"), []string{"max_requests=1.5"}},
		{dsn(replica, "max_requests="), []string{"max_requests="}},
		{dsn(replica, "max_requests=5", "max_requests=6"), []string{"max_requests given 2 times"}},
		{dsn(replica, "max_bytes=0"), []string{"max_bytes=0", "at least 1 byte"}},
		{dsn(replica, "max_bytes=-1MiB"), []string{"max_bytes=-1MiB"}},
		{dsn(replica, "max_bytes=much"), []string{"max_bytes=much"}},
		{dsn(replica, "max_bytes=1e9"), []string{"max_bytes=1e9"}},
		{dsn(replica, "max_byte=1MiB"), []string{"max_byte", "max_bytes"}},
		{dsn(replica, "max_request=10"), []string{"max_request", "max_requests"}},
		// SQLite's own, where they would break the snapshots
		{dsn(replica, "immutable=1"), []string{"immutable=1"}},
		{dsn(replica, "nolock=1"), []string{"nolock=1"}},
		{dsn(replica, "immutable=maybe"), []string{"immutable=maybe"}},
	} {
		badInputsTried++
		db := openDB(t, tt.dsn)
		rows, err := queryErr(db, `SELECT count(*) FROM t`)
		db.Close()
		if err == nil {
			t.Errorf("%s: opened and read %v", tt.dsn, rows)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s:\n error %q\n does not say %q", tt.dsn, err, w)
			}
		}
	}

	// Accepted values read exactly their TXID's rows.
	for _, tt := range []struct {
		param string
		rows  int64
	}{
		{"time=2999-01-01T00:00:00Z", 5}, // the future: the newest commit at or before it
		{"time=-0s", 5},
		{"time=" + url.QueryEscape(src.timeOf(6).Format(ltx.RFC3339Milli)), 5},
		{"txid=0000000000000006", 5},
		{"txid=6&poll=250ms&pagecache=1MiB", 5},
		{"max_requests=1000&max_bytes=64MiB", 5},
		{"immutable=0", 5},
		{"mode=ro", 5},
	} {
		db := openDB(t, dsn(replica, tt.param))
		if got, err := queryErr(db, `SELECT count(*) FROM t`); err != nil || len(got) != 1 || got[0] != tt.rows {
			t.Errorf("%s: %v, %v; want %d rows", tt.param, got, err, tt.rows)
		}
		db.Close()
	}
	t.Logf("%d bad inputs tried so far", badInputsTried)
}

// TestBadPragmaValues: a refused setter names the PRAGMA and the value and
// leaves the connection at its TXID, reading its rows.
func TestBadPragmaValues(t *testing.T) {
	src := pragmaSource(t) // TXID n holds n-1 rows, n = 1..5
	c := conn(t, src.open("poll=1h", "txid=4"))
	ctx := context.Background()
	for _, tt := range []struct{ stmt, want string }{
		{`PRAGMA ltx_txid = 'abc'`, `ltx_txid=abc`},
		{`PRAGMA ltx_txid = 0`, `ltx_txid=0`},
		{`PRAGMA ltx_txid = -1`, `ltx_txid=-1`},
		{`PRAGMA ltx_txid = 1.5`, `ltx_txid=1.5`},
		{`PRAGMA ltx_txid = '0x10'`, `ltx_txid=0x10`},
		{`PRAGMA ltx_txid = ' 3'`, `ltx_txid= 3`},
		{`PRAGMA ltx_txid = 99`, `ltx_txid=99`},
		{`PRAGMA ltx_txid = '18446744073709551616'`, `ltx_txid=18446744073709551616`},
		{`PRAGMA ltx_txid = 'latest '`, `ltx_txid=latest `},
		{`PRAGMA ltx_time = 'yesterday'`, `ltx_time=yesterday`},
		{`PRAGMA ltx_time = '+5m'`, `ltx_time=+5m`},
		{`PRAGMA ltx_time = '2001-01-01T00:00:00Z'`, `ltx_time=2001-01-01T00:00:00Z`},
		{`PRAGMA ltx_time = 42`, `ltx_time=42`},
		{`PRAGMA ltx_lag = 5`, `ltx_lag=5`},
		{`PRAGMA ltx_lag = 'latest'`, `ltx_lag=latest`},
		{`PRAGMA ltx_stats = 0`, `ltx_stats=0`},
		{`PRAGMA ltx_stats = 'reset'`, `ltx_stats=reset`},
	} {
		badInputsTried++
		_, err := c.ExecContext(ctx, tt.stmt)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.stmt, err, tt.want)
		}
		if got := one[string](t, c, `PRAGMA ltx_txid`); got != "4" {
			t.Fatalf("after %s: ltx_txid = %s, want 4", tt.stmt, got)
		}
		if got := ints(t, c, `SELECT count(*) FROM t`); got[0] != 3 {
			t.Fatalf("after %s: %d rows, want TXID 4's 3", tt.stmt, got[0])
		}
	}
	t.Logf("%d bad inputs tried so far", badInputsTried)
}

// TestBadReplicaContents: a replica holding what no writer writes, or
// damage, fails with an error naming the file, or is read correctly when
// the odd files are not LTX files at all; never wrong rows, never a panic.
func TestBadReplicaContents(t *testing.T) {
	// build: TXIDs 1..4, TXID n holding n-1 rows.
	build := func(t *testing.T) *source {
		src := newSource(t, 4096)
		src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY)`)
		for i := 1; i <= 3; i++ {
			src.exec(`INSERT INTO t(id) VALUES (?)`, i)
		}
		return src
	}
	l0 := func(src *source, txid ltx.TXID) string { return storage.FilePath(src.dir, 0, txid, txid) }
	damage := func(t *testing.T, path string, f func([]byte) []byte) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, f(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	name4 := ltx.FormatFilename(4, 4)

	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, src *source)
		want  []string // the error says each; nil: the read succeeds with 3 rows
	}{
		{"zero-length file", func(t *testing.T, src *source) {
			damage(t, l0(src, 4), func([]byte) []byte { return nil })
		}, []string{name4, "0 bytes"}},
		{"truncated file", func(t *testing.T, src *source) {
			damage(t, l0(src, 4), func(b []byte) []byte { return b[:len(b)/2] })
		}, []string{name4}},
		{"truncated to its header", func(t *testing.T, src *source) {
			damage(t, l0(src, 4), func(b []byte) []byte { return b[:ltx.HeaderSize] })
		}, []string{name4}},
		{"wrong magic", func(t *testing.T, src *source) {
			damage(t, l0(src, 4), func(b []byte) []byte { copy(b, "LTXX"); return b })
		}, []string{name4}},
		{"a snapshot that is a text file", func(t *testing.T, src *source) {
			path := storage.FilePath(src.dir, storage.SnapshotLevel, 1, 4)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(strings.Repeat("not an LTX file\n", 100)), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{ltx.FormatFilename(1, 4)}},
		{"header TXIDs disagree with the name", func(t *testing.T, src *source) {
			b, err := os.ReadFile(l0(src, 3))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(l0(src, 4), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{name4, "not those of its name"}},
		{"page size differs from the files before", func(t *testing.T, src *source) {
			d := storagetest.NewDB(1024)
			var b []byte
			for range 4 {
				b = d.Apply(t, 1, map[uint32][]byte{1: storagetest.FillPage(1024, 1, 1)})
			}
			if err := os.WriteFile(l0(src, 4), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{name4, "page size 1024"}},
		{"a file of another database", func(t *testing.T, src *source) {
			d := storagetest.NewDB(4096)
			var b []byte
			for range 4 {
				b = d.Apply(t, 2, map[uint32][]byte{1: storagetest.FillPage(4096, 1, 7), 2: storagetest.FillPage(4096, 2, 7)})
			}
			if err := os.WriteFile(l0(src, 4), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{name4, "does not continue"}},
		{"foreign files", func(t *testing.T, src *source) {
			for _, name := range []string{
				"ltx/0/notes.txt", "ltx/0/.0000000000000005-0000000000000005.ltx.123.tmp",
				"ltx/0/0000000000000005-0000000000000005.ltx.bak", "ltx/0/5-5.ltx",
				"ltx/0/ZZZZZZZZZZZZZZZZ-ZZZZZZZZZZZZZZZZ.ltx", "ltx/x/0000000000000001-0000000000000009.ltx",
				"ltx/99/0000000000000001-0000000000000009.ltx", "ltx/0009/0000000000000001-0000000000000009.ltx",
				"generations/abc/snapshot.lz4", ".DS_Store",
			} {
				path := filepath.Join(src.dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte("junk"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// A directory and a symbolic link named like LTX files.
			if err := os.Mkdir(l0(src, 6), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(l0(src, 2), l0(src, 7)); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"not a SQLite database", func(t *testing.T, src *source) {
			for _, e := range mustReadDir(t, storage.FileLevelDir(src.dir, 0)) {
				os.Remove(filepath.Join(storage.FileLevelDir(src.dir, 0), e))
			}
			d := storagetest.NewDB(4096)
			for range 4 {
				b := d.Apply(t, 2, map[uint32][]byte{1: storagetest.FillPage(4096, 1, 1), 2: storagetest.FillPage(4096, 2, 1)})
				src.put(0, b)
			}
		}, []string{"page 1", "not a SQLite database header", name4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			badInputsTried++
			src := build(t)
			src.exec(`INSERT INTO t(id) VALUES (4)`) // TXID 5; TXID 4 is what most cases damage
			// Every case reads TXID 4 (3 rows) or fails: the rows of TXID 5
			// are not asked for, so that a case cannot pass by skipping 4.
			tt.setup(t, src)
			for _, p := range []string{"txid=4", "poll=1h"} {
				db := src.open(p)
				rows, err := queryErr(db, `SELECT count(*) FROM t`)
				db.Close()
				if tt.want == nil {
					want := int64(3)
					if p == "poll=1h" {
						want = 4
					}
					if err != nil || len(rows) != 1 || rows[0] != want {
						t.Fatalf("%s: %v, %v; want %d rows", p, rows, err, want)
					}
					continue
				}
				if err == nil {
					t.Fatalf("%s: read %v from a bad replica", p, rows)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not say %q", p, err, w)
					}
				}
			}
		})
	}
	t.Logf("%d bad inputs tried so far", badInputsTried)
}

func mustReadDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
