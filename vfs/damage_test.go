package vfs

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
	filereplica "github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// written is a replica made by the real writer from a WAL-mode database.
type written struct {
	t      *testing.T
	dir    string
	client *filereplica.Client
	app    *sql.DB
	rep    *writer.Replicator
}

func newWritten(t *testing.T, opts writer.Options) *written {
	t.Helper()
	base := t.TempDir()
	path := filepath.Join(base, "primary.db")
	app, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	if _, err := app.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	w := &written{t: t, dir: filepath.Join(base, "replica"), app: app}
	w.client = filereplica.New(w.dir)
	opts.SyncInterval, opts.SnapshotInterval, opts.CheckpointInterval = -1, -1, -1
	if w.rep, err = writer.New(path, w.client, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.rep.Close(context.Background()) })
	w.sync()
	return w
}

// exec runs SQL on the primary and syncs it into one L0 file.
func (w *written) exec(query string, args ...any) ltx.TXID {
	w.t.Helper()
	if _, err := w.app.Exec(query, args...); err != nil {
		w.t.Fatalf("%s: %v", query, err)
	}
	return w.sync()
}

func (w *written) sync() ltx.TXID {
	w.t.Helper()
	if err := w.rep.Sync(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	return w.rep.TXID()
}

func (w *written) dsn(extra ...string) string {
	return "file:app.db?" + strings.Join(append([]string{"vfs=ltx", "replica=" + w.dir}, extra...), "&")
}

// damage changes a file of the replica in place, keeping its size.
func damage(t *testing.T, path string, change func(b []byte)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	was := bytes.Clone(b)
	change(b)
	if bytes.Equal(b, was) {
		t.Fatalf("%s: nothing changed", path)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// strs runs a query that returns one text column.
func strs(db *sql.DB, query string) ([]string, error) {
	rows, err := db.QueryContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// wantDamageError runs query and wants an error that names the file, and
// never rows.
func wantDamageError(t *testing.T, db *sql.DB, query, file string, more ...string) {
	t.Helper()
	got, err := strs(db, query)
	if err == nil {
		t.Fatalf("%s: read %d rows from a damaged replica, want an error", query, len(got))
	}
	for _, want := range append([]string{file}, more...) {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: error %q does not say %q", query, err, want)
		}
	}
}

// TestDamagedSmallFileIsAnError: a small L0 file, read whole at open,
// whose text was changed in place (same size) is an error naming it,
// following or pinned at its TXID; the TXIDs before it still read.
func TestDamagedSmallFileIsAnError(t *testing.T) {
	w := newWritten(t, writer.Options{})
	before := w.exec(`INSERT INTO t(v) VALUES ('first')`)
	txid := w.exec(`INSERT INTO t(v) VALUES ('The quick brown fox jumps over the lazy dog')`)
	path := storage.FilePath(w.dir, 0, txid, txid)
	damage(t, path, func(b []byte) {
		i := bytes.Index(b, []byte("quick"))
		if i < 0 {
			t.Fatal("the L0 file does not hold the text as written")
		}
		copy(b[i:], "QUICK")
	})
	name := ltx.FormatFilename(txid, txid)
	for _, dsn := range []string{w.dsn(), w.dsn(fmt.Sprintf("txid=%d", txid))} {
		_, err := strs(openDB(t, dsn), `SELECT v FROM t`)
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("%s: got %v, want a checksum error naming %s", dsn, err, name)
		}
	}
	got, err := strs(openDB(t, w.dsn(fmt.Sprintf("txid=%d", before))), `SELECT v FROM t`)
	if err != nil || len(got) != 1 || got[0] != "first" {
		t.Fatalf("at TXID %d before the damaged file: %q, %v", before, got, err)
	}
}

// bigText is text that LZ4 cannot shrink much.
func bigText(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[r.IntN(36)]
	}
	return string(b)
}

// insertBig inserts rows of 4000 random characters in one transaction and
// syncs it into one L0 file.
func (w *written) insertBig(rows int) ltx.TXID {
	w.t.Helper()
	tx, err := w.app.Begin()
	if err != nil {
		w.t.Fatal(err)
	}
	for i := range rows {
		if _, err := tx.Exec(`INSERT INTO t(v) VALUES (?)`, bigText(4000, uint64(i))); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		w.t.Fatal(err)
	}
	return w.sync()
}

// TestDamagedMidSizedFile: a 165 KB L0 file with 4 bytes changed at a
// third and at two thirds of it is read whole at open (it is under 1 MiB)
// and fails its file checksum: an error naming it, following or pinned.
func TestDamagedMidSizedFile(t *testing.T) {
	w := newWritten(t, writer.Options{})
	w.exec(`INSERT INTO t(v) VALUES ('small')`)
	txid := w.insertBig(40)
	damage(t, storage.FilePath(w.dir, 0, txid, txid), func(b []byte) {
		for _, at := range []int{len(b) / 3, 2 * len(b) / 3} {
			for i := at; i < at+4; i++ {
				b[i] ^= 0xa5
			}
		}
	})
	for _, dsn := range []string{w.dsn(), w.dsn(fmt.Sprintf("txid=%d", txid))} {
		wantDamageError(t, openDB(t, dsn), `SELECT v FROM t`, ltx.FormatFilename(txid, txid), "checksum")
	}
}

// TestDamagedPagesReadByRange: a 1.2 MB L0 file, read by range, with 4
// bytes changed at a third and at two thirds of it: each query that reads
// a damaged page fails naming the file and the page, every time (the page
// is never cached, in memory or on disk), and the hint the writer wrote
// beside the file is what tells.
func TestDamagedPagesReadByRange(t *testing.T) {
	w := newWritten(t, writer.Options{})
	w.exec(`INSERT INTO t(v) VALUES ('small')`)
	txid := w.insertBig(300)
	path := storage.FilePath(w.dir, 0, txid, txid)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 1<<20 {
		t.Fatalf("the L0 file is %d bytes: too small to be read by range", fi.Size())
	}
	hints, err := w.client.ListObjects(context.Background(), manifest.HintDir)
	if err != nil || len(hints) == 0 {
		t.Fatalf("no hint beside the L0 file: %v, %v", hints, err)
	}
	damage(t, path, func(b []byte) {
		for _, at := range []int{len(b) / 3, 2 * len(b) / 3} {
			for i := at; i < at+4; i++ {
				b[i] ^= 0xa5
			}
		}
	})
	name := ltx.FormatFilename(txid, txid)
	cache := t.TempDir()
	db := openDB(t, w.dsn("diskcache="+cache))
	for range 2 {
		wantDamageError(t, db, `SELECT v FROM t`, name, "page ", "checksum")
	}
	// The undamaged pages still read.
	if got, err := strs(db, `SELECT v FROM t WHERE id = 1`); err != nil || len(got) != 1 || got[0] != "small" {
		t.Fatalf("row 1: %q, %v", got, err)
	}
}

// TestDamagedHintIsIgnored: a hint that does not check out is dropped
// with a warning, and its file (undamaged) still reads right.
func TestDamagedHintIsIgnored(t *testing.T) {
	w := newWritten(t, writer.Options{})
	w.insertBig(300)
	hints, err := w.client.ListObjects(context.Background(), manifest.HintDir)
	if err != nil || len(hints) != 1 {
		t.Fatalf("hints: %v, %v", hints, err)
	}
	damage(t, filepath.Join(w.dir, "ltx", storage.ObjectDir, hints[0].Name), func(b []byte) { b[len(b)/2] ^= 1 })
	got, err := strs(openDB(t, w.dsn()), `SELECT v FROM t`)
	if err != nil || len(got) != 300 || got[7] != bigText(4000, 7) {
		t.Fatalf("read %d rows, %v", len(got), err)
	}
}

// TestDamagedSnapshotPage: a page damaged in the middle of a snapshot is
// an error naming the snapshot and the page, for a query pinned at the
// snapshot's TXID.
func TestDamagedSnapshotPage(t *testing.T) {
	w := newWritten(t, writer.Options{})
	w.insertBig(300)
	snap, err := w.rep.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.client.DeleteLTXFiles(context.Background(), mustList(t, w.client, 0)); err != nil {
		t.Fatal(err)
	}
	path := storage.FilePath(w.dir, storage.SnapshotLevel, 1, snap.MaxTXID)
	damage(t, path, func(b []byte) { b[len(b)/2] ^= 0x20 })
	db := openDB(t, w.dsn(fmt.Sprintf("txid=%d", snap.MaxTXID)))
	wantDamageError(t, db, `SELECT v FROM t`, ltx.FormatFilename(1, snap.MaxTXID), "page ")
}

func mustList(t *testing.T, c storage.Client, level int) []*ltx.FileInfo {
	t.Helper()
	infos, err := storage.ListLevel(context.Background(), c, level, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	return infos
}

// TestDamagedFileWithoutHint: a file of a few hundred KiB without a hint
// (as Litestream writes them) is read whole at open and checked against
// its file checksum, so damage anywhere in it is an error naming it.
func TestDamagedFileWithoutHint(t *testing.T) {
	w := newWritten(t, writer.Options{NoHints: true})
	w.exec(`INSERT INTO t(v) VALUES ('small')`)
	txid := w.insertBig(40)
	path := storage.FilePath(w.dir, 0, txid, txid)
	damage(t, path, func(b []byte) { b[len(b)/3] ^= 0x01 })
	wantDamageError(t, openDB(t, w.dsn()), `SELECT v FROM t`, ltx.FormatFilename(txid, txid), "checksum")
}
