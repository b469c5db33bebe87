package vfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
)

// treeHash digests every file under dir (names, sizes, contents), so that a
// test can tell that nothing in it changed.
func treeHash(t *testing.T, dir string) [32]byte {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		h.Write([]byte(path + "\x00"))
		if d.Type().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// TestReadOnlyAtEveryEntry: nothing SQLite can be asked to do writes
// through the ltx VFS (rule 6): writes, journals, WAL, schema edits,
// VACUUM, ATTACH of another ltx database, header PRAGMAs, write locks. Each
// fails, and afterwards the replica is byte for byte what it was, the rows
// are the same, and no journal, WAL or shm file exists anywhere.
func TestReadOnlyAtEveryEntry(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`CREATE INDEX t_v ON t(v)`)
	src.exec(`INSERT INTO t(id, v) SELECT value, 'v' || value FROM generate_series(1, 300)`)
	before := treeHash(t, src.dir)
	work := t.TempDir()
	t.Chdir(work) // a journal opened by a relative name would land here
	other := filepath.Join(work, "other.db")
	ctx := context.Background()

	c := conn(t, src.open("poll=1h"))
	for _, stmt := range []string{
		`INSERT INTO t(id, v) VALUES (1000, 'x')`,
		`UPDATE t SET v = 'x' WHERE id = 1`,
		`DELETE FROM t WHERE id = 1`,
		`REPLACE INTO t(id, v) VALUES (1, 'y')`,
		`CREATE TABLE u(x)`,
		`CREATE VIEW w AS SELECT 1`,
		`CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END`,
		`DROP INDEX t_v`,
		`DROP TABLE t`,
		`ALTER TABLE t ADD COLUMN z`,
		`ALTER TABLE t RENAME TO t2`,
		`REINDEX`,
		`ANALYZE`,
		`VACUUM`,
		`PRAGMA incremental_vacuum`,
		`PRAGMA user_version = 7`,
		`PRAGMA application_id = 7`,
		`PRAGMA schema_version = 99`,
		// SQLite makes these read transactions on a read-only database;
		// the write in them fails.
		`BEGIN IMMEDIATE; INSERT INTO t(id, v) VALUES (1000, 'x')`,
		`BEGIN EXCLUSIVE; INSERT INTO t(id, v) VALUES (1000, 'x')`,
		`PRAGMA locking_mode = EXCLUSIVE; INSERT INTO t(id, v) VALUES (1000, 'x')`,
		// writable_schema lets SQL edit sqlite_schema; the edit still
		// needs a write.
		`PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = 'CREATE TABLE t(x)' WHERE name = 't'`,
		`PRAGMA writable_schema = ON; DELETE FROM sqlite_schema WHERE name = 't_v'`,
		// A page size change takes effect with VACUUM, which needs a write.
		`PRAGMA page_size = 1024; VACUUM`,
		`PRAGMA auto_vacuum = FULL; VACUUM`,
		// Another database of the same replica attached through ltx is
		// read-only too, whatever mode the URI asks for.
		`ATTACH 'file:two.db?vfs=ltx&mode=rwc&replica=` + url.QueryEscape(src.dir) + `' AS two; CREATE TABLE two.u(x)`,
		`ATTACH 'file:three.db?vfs=ltx&replica=` + url.QueryEscape(src.dir) + `' AS three; INSERT INTO three.t(id, v) VALUES (2000, 'z')`,
		// A plain path is opened with the connection's VFS, ltx: it needs
		// a replica, and no local file is created.
		`ATTACH '` + other + `' AS other; CREATE TABLE other.u(x)`,
	} {
		_, err := c.ExecContext(ctx, stmt)
		if err == nil {
			t.Errorf("%s: no error", stmt)
		}
		for _, schema := range []string{"two", "three", "other"} {
			c.ExecContext(ctx, `DETACH `+schema)
		}
		c.ExecContext(ctx, `ROLLBACK`)
		c.ExecContext(ctx, `PRAGMA writable_schema = OFF`)
	}
	c.ExecContext(ctx, `PRAGMA locking_mode = NORMAL`)
	// A journal mode may be set (it is the connection's), but never WAL,
	// and no mode makes a write possible.
	for _, mode := range []string{"wal", "delete", "truncate", "persist", "memory", "off", "wal"} {
		var got string
		if err := c.QueryRowContext(ctx, `PRAGMA journal_mode = `+mode).Scan(&got); err == nil && got == "wal" {
			t.Errorf("journal_mode = %s switched to WAL", mode)
		}
		if _, err := c.ExecContext(ctx, `INSERT INTO t(id, v) VALUES (1000, 'x')`); err == nil {
			t.Errorf("journal_mode = %s: an insert succeeded", mode)
		}
	}
	if got := ints(t, c, `SELECT count(*) FROM t WHERE v LIKE 'v%'`); got[0] != 300 {
		t.Fatalf("after the refused writes: %d rows, want 300", got[0])
	}
	if got := one[string](t, c, `PRAGMA integrity_check`); got != "ok" {
		t.Fatalf("integrity_check: %s", got)
	}
	if after := treeHash(t, src.dir); after != before {
		t.Fatal("the replica changed")
	}
	entries, err := os.ReadDir(work)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("files created in the working directory: %q", names)
	}

	// The VFS itself, asked directly as SQLite would for a writable
	// database's companions.
	for _, flags := range []vfs.OpenFlag{vfs.OPEN_MAIN_JOURNAL, vfs.OPEN_WAL, vfs.OPEN_SUPER_JOURNAL} {
		f, _, err := (ltxVFS{}).Open("app.db-x", flags|vfs.OPEN_CREATE|vfs.OPEN_READWRITE)
		if err == nil {
			f.Close()
			t.Errorf("Open(%#x) opened a file", flags)
		}
	}
	for _, suffix := range []string{"-journal", "-wal", "-shm"} {
		if ok, err := (ltxVFS{}).Access("app.db"+suffix, vfs.ACCESS_EXISTS); ok || err != nil {
			t.Errorf("Access(%s) = %t, %v: a journal must never seem to exist", suffix, ok, err)
		}
		if err := (ltxVFS{}).Delete("app.db"+suffix, true); err == nil {
			t.Errorf("Delete(%s) succeeded", suffix)
		}
	}
	if f, _, err := (ltxVFS{}).Open(filepath.Join(src.dir, "ltx", "0", "x"), vfs.OPEN_MAIN_DB|vfs.OPEN_CREATE|vfs.OPEN_READWRITE); err == nil {
		f.Close()
		t.Error("Open by path of a main database without a replica succeeded")
	}
	if after := treeHash(t, src.dir); after != before {
		t.Fatal("the replica changed")
	}
}

// secret is a secret access key no output may show.
const secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"

// TestSecretsNeverShown: with credentials in the environment and requests
// that fail (the server does not know them), and with credentials put in a
// replica URL by mistake, the secret appears in no error, no log line and
// no metric label value.
func TestSecretsNeverShown(t *testing.T) {
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_REGION", s3test.Region)

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	old := slog.Default()
	slog.SetDefault(logger)
	t.Cleanup(func() { slog.SetDefault(old) })

	good := srv.URL(bucket, "app")
	u, err := url.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	withUser := *u
	withUser.User = url.UserPassword("AKIAEXAMPLEKEYID", secret)
	endpoint := u.Query().Get("endpoint")
	epWithUser := strings.Replace(good, url.QueryEscape(endpoint), url.QueryEscape(strings.Replace(endpoint, "://", "://AKIAEXAMPLEKEYID:"+secret+"@", 1)), 1)

	var errs []string
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		errs = append(errs, err.Error())
	}

	// DSNs, as an application gives them.
	for _, raw := range []string{
		good,                            // the server refuses the keys from the environment
		withUser.String(),               // credentials in the URL
		epWithUser,                      // credentials in the endpoint
		withUser.String() + "&regoin=x", // and another mistake
		"s3://AKIAEXAMPLEKEYID:" + secret + "@" + bucket + "/app?endpoint=%zz",
	} {
		db := openDB(t, "file:app.db?vfs=ltx&replica="+url.QueryEscape(raw))
		_, err := queryErr(db, `SELECT 1 FROM sqlite_schema`)
		check("open "+raw, err)
		db.Close()
	}
	// A misspelt parameter name: the error quotes its value.
	db := openDB(t, "file:app.db?vfs=ltx&replcia="+url.QueryEscape(withUser.String()))
	_, err = queryErr(db, `SELECT 1 FROM sqlite_schema`)
	check("open with replcia=", err)
	db.Close()
	// A replica URL pasted into another parameter: the error quotes it.
	for _, key := range []string{"txid", "time", "poll", "pagecache", "diskcache_size", "max_requests", "max_bytes", "wait", "wait_timeout", "immutable"} {
		db := openDB(t, "file:app.db?vfs=ltx&replica="+url.QueryEscape(good)+"&"+key+"="+url.QueryEscape(withUser.String()))
		_, err := queryErr(db, `SELECT 1 FROM sqlite_schema`)
		check("open with the replica URL as "+key+"=", err)
		db.Close()
	}

	// Attach, with metrics and a logger of its own.
	reg := prometheus.NewRegistry()
	for i, raw := range []string{good, withUser.String(), epWithUser} {
		name := "secret-test-" + string(rune('a'+i))
		err := Attach(name, Options{URL: raw, Registerer: reg, Logger: logger, Poll: 10e6})
		if err != nil {
			check("attach "+raw, err)
			continue
		}
		t.Cleanup(func() { Detach(name) })
		db := openDB(t, "file:"+name+"?vfs=ltx")
		_, err = queryErr(db, `SELECT 1 FROM sqlite_schema`)
		check("open attached "+raw, err)
		db.Close()
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				labels = append(labels, mf.GetName()+"{"+lp.GetName()+"="+lp.GetValue()+"}")
			}
		}
	}
	if len(labels) == 0 {
		t.Fatal("no metric was registered: the label check checks nothing")
	}

	for _, e := range errs {
		if strings.Contains(e, secret) {
			t.Errorf("an error shows the secret: %s", e)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the logs show the secret:\n%s", logs.String())
	}
	if i := slices.IndexFunc(labels, func(l string) bool { return strings.Contains(l, secret) }); i >= 0 {
		t.Errorf("a metric label shows the secret: %s", labels[i])
	}
	if testing.Verbose() {
		for _, e := range errs {
			t.Log(e)
		}
	}
}
