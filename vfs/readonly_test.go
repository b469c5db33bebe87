package vfs

import (
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs"
)

// Rule 6: any write fails with SQLITE_READONLY and changes nothing.
func TestWritesAreReadOnly(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`INSERT INTO t(id, v) VALUES (1, 'a')`)
	db := src.open()

	for _, stmt := range []string{
		`INSERT INTO t(id, v) VALUES (2, 'b')`,
		`UPDATE t SET v = 'x'`,
		`DELETE FROM t`,
		`CREATE TABLE u(x)`,
		`CREATE INDEX t_v ON t(v)`,
		`DROP TABLE t`,
		`PRAGMA user_version = 7`,
		`VACUUM`,
		`PRAGMA incremental_vacuum`,
	} {
		_, err := db.Exec(stmt)
		if !errors.Is(err, sqlite3.READONLY) {
			t.Errorf("%s: %v, want SQLITE_READONLY", stmt, err)
		}
	}
	if got := ints(t, db, `SELECT id FROM t`); !slices.Equal(got, []int64{1}) {
		t.Fatalf("rows after refused writes = %v, want [1]", got)
	}
}

// The file refuses what SQLite would ask of a writable database.
func TestFileRefusesWrites(t *testing.T) {
	f := &file{}
	if err := f.Lock(vfs.LOCK_RESERVED); !errors.Is(err, sqlite3.READONLY) {
		t.Errorf("Lock(RESERVED) = %v", err)
	}
	if err := f.Lock(vfs.LOCK_EXCLUSIVE); !errors.Is(err, sqlite3.READONLY) {
		t.Errorf("Lock(EXCLUSIVE) = %v", err)
	}
	if _, err := f.WriteAt([]byte{1}, 0); !errors.Is(err, sqlite3.READONLY) {
		t.Errorf("WriteAt = %v", err)
	}
	if err := f.Truncate(0); !errors.Is(err, sqlite3.READONLY) {
		t.Errorf("Truncate = %v", err)
	}
	if dc := f.DeviceCharacteristics(); dc&vfs.IOCAP_IMMUTABLE != 0 {
		t.Errorf("DeviceCharacteristics claims IOCAP_IMMUTABLE")
	}
	// A temp file (no name) is a writable OS file.
	tmp, _, err := (ltxVFS{}).Open("", vfs.OPEN_TEMP_JOURNAL|vfs.OPEN_CREATE|vfs.OPEN_READWRITE|vfs.OPEN_DELETEONCLOSE)
	if err != nil {
		t.Fatalf("open a temp journal: %v", err)
	}
	defer tmp.Close()
	buf := make([]byte, 5)
	if _, err := tmp.WriteAt([]byte("hello"), 4096); err != nil {
		t.Fatalf("write a temp journal: %v", err)
	}
	if _, err := tmp.ReadAt(buf, 4096); err != nil || string(buf) != "hello" {
		t.Fatalf("read a temp journal: %q, %v", buf, err)
	}
	for _, flags := range []vfs.OpenFlag{vfs.OPEN_MAIN_JOURNAL, vfs.OPEN_WAL, vfs.OPEN_SUPER_JOURNAL} {
		if _, _, err := (ltxVFS{}).Open("app.db-journal", flags|vfs.OPEN_CREATE|vfs.OPEN_READWRITE); err == nil {
			t.Errorf("Open(%#x) opened a file", flags)
		}
	}
}

// journal_mode=wal cannot be switched on: it would need a write, and the
// VFS never opens a -wal or -shm file.
func TestJournalModeWALRefused(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(x)`)
	db := src.open()
	db.SetMaxOpenConns(1)
	var mode string
	err := db.QueryRow(`PRAGMA journal_mode=wal`).Scan(&mode)
	t.Logf("PRAGMA journal_mode=wal: %q, %v", mode, err)
	if err == nil && mode == "wal" {
		t.Fatalf("journal_mode=wal switched to WAL")
	}
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode == "wal" {
		t.Fatalf("journal_mode = %q, %v; want a rollback mode", mode, err)
	}
	if got := ints(t, db, `SELECT count(*) FROM t`); got[0] != 0 {
		t.Fatal(got)
	}
}

// Sorts and temp tables that spill to disk use the OS VFS.
func TestTempFilesUseTheOSVFS(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`INSERT INTO t(id, v) SELECT value, hex(randomblob(200)) FROM generate_series(1, 5000)`)
	db := src.open("_pragma=temp_store(file)", "_pragma=cache_size(10)")
	db.SetMaxOpenConns(1)

	// An ORDER BY on an unindexed column over ~2 MB with a 10-page cache
	// makes the sorter spill to temp files.
	rows := ints(t, db, `SELECT id FROM t ORDER BY v, id`)
	if len(rows) != 5000 {
		t.Fatalf("sorted %d rows, want 5000", len(rows))
	}
	if _, err := db.Exec(`CREATE TEMP TABLE scratch AS SELECT id, v FROM t WHERE id % 2 = 0`); err != nil {
		t.Fatalf("create temp table: %v", err)
	}
	if got := ints(t, db, `SELECT count(*) FROM temp.scratch JOIN t USING (id)`); got[0] != 2500 {
		t.Fatalf("temp table join: %v, want 2500", got)
	}
	if _, err := db.Exec(`INSERT INTO t(id, v) SELECT id + 10000, v FROM temp.scratch`); !errors.Is(err, sqlite3.READONLY) {
		t.Fatalf("insert from a temp table into the replica: %v, want SQLITE_READONLY", err)
	}
}

// VACUUM INTO writes a copy of the pinned snapshot to a local file when the
// target names the OS VFS; a plain path would be opened with the ltx VFS
// (the connection's) and needs a replica, so it fails with a clear error.
func TestVacuumInto(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`INSERT INTO t(id, v) SELECT value, 'v' FROM generate_series(1, 300)`)
	db := src.open()

	out := filepath.Join(t.TempDir(), "copy.db")
	if _, err := db.Exec(`VACUUM INTO ?`, "file:"+out+"?vfs=os"); err != nil {
		t.Fatalf("VACUUM INTO an OS file: %v", err)
	}
	cp, err := sql.Open("sqlite3", "file:"+out+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if got := ints(t, cp, `SELECT count(*) FROM t`); got[0] != 300 {
		t.Fatalf("copy holds %v rows, want 300", got)
	}

	_, err = db.Exec(`VACUUM INTO ?`, filepath.Join(t.TempDir(), "plain.db"))
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("VACUUM INTO a plain path: %v, want an error about the missing replica", err)
	}
}
