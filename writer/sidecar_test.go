package writer_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/ltxvfs/ltxvfs/writer"
)

// sidecarCase is a database replicated by a writer that has closed, the
// application closed too (its WAL checkpointed and deleted), so that only
// the position file can tie the database to the replica.
type sidecarCase struct {
	t    *testing.T
	path string
	c    storage.Client
	app  *sql.DB
}

func newSidecarCase(t *testing.T) *sidecarCase {
	t.Helper()
	sc := &sidecarCase{t: t, path: filepath.Join(t.TempDir(), "app.db"), c: newReplica(t)}
	sc.app = openApp(t, sc.path)
	insert(t, sc.app, 300)
	r := newReplicator(t, sc.path, sc.c, testOpts())
	mustSync(t, r)
	insert(t, sc.app, 10)
	mustSync(t, r)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	sc.closeApp()
	return sc
}

// closeApp closes the application's last connection, which checkpoints
// the WAL and deletes it.
func (sc *sidecarCase) closeApp() {
	sc.t.Helper()
	sc.app.Close()
	if _, err := os.Stat(sc.path + "-wal"); !os.IsNotExist(err) {
		sc.t.Fatalf("the WAL is still there after the last connection closed: %v", err)
	}
}

func (sc *sidecarCase) sidecar() map[string]any {
	sc.t.Helper()
	b, err := os.ReadFile(sc.path + writer.SidecarSuffix)
	if err != nil {
		sc.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		sc.t.Fatalf("position file: %v", err)
	}
	return m
}

func (sc *sidecarCase) setSidecar(m map[string]any) {
	sc.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		sc.t.Fatal(err)
	}
	if err := os.WriteFile(sc.path+writer.SidecarSuffix, b, 0o644); err != nil {
		sc.t.Fatal(err)
	}
}

// restart reopens the application, writes, starts a new writer and syncs;
// it checks that the replica restores to the database and returns the
// number of whole-database L0 files the writer wrote.
func (sc *sidecarCase) restart() float64 {
	sc.t.Helper()
	sc.app = openApp(sc.t, sc.path)
	insert(sc.t, sc.app, 2)
	opts, reg := withMetrics(testOpts())
	r := newReplicator(sc.t, sc.path, sc.c, opts)
	defer r.Close(context.Background())
	mustSync(sc.t, r)
	insert(sc.t, sc.app, 1)
	mustSync(sc.t, r)
	checkContiguous(sc.t, sc.c, 1)
	if got, _ := restoreDump(sc.t, sc.c, restore.Options{}); got != dump(sc.t, sc.app) {
		sc.t.Fatal("the replica restores to something else than the database: the position file was trusted when it lied")
	}
	return metric(sc.t, reg, "ltx_writer_l0_snapshots_total")
}

// TestSidecarTrusted: the position file of the writer that stopped ties
// the database to the replica after a clean application restart.
func TestSidecarTrusted(t *testing.T) {
	sc := newSidecarCase(t)
	if m := sc.sidecar(); m["max_txid"] != "0000000000000002" {
		t.Fatalf("position file names TXID %v, want the last upload, 2", m["max_txid"])
	}
	if n := sc.restart(); n != 0 {
		t.Fatalf("%v whole-database L0 files with a true position file, want none", n)
	}
}

// TestSidecarLies: every way the position file can be wrong leads to a
// whole-database L0 file, never to increments over a state the database
// is not in.
func TestSidecarLies(t *testing.T) {
	for _, tt := range []struct {
		name string
		lie  func(t *testing.T, sc *sidecarCase)
	}{
		{"missing", func(t *testing.T, sc *sidecarCase) {
			os.Remove(sc.path + writer.SidecarSuffix)
		}},
		{"damaged", func(t *testing.T, sc *sidecarCase) {
			b, _ := os.ReadFile(sc.path + writer.SidecarSuffix)
			os.WriteFile(sc.path+writer.SidecarSuffix, b[:len(b)/2], 0o644)
		}},
		{"empty", func(t *testing.T, sc *sidecarCase) {
			os.WriteFile(sc.path+writer.SidecarSuffix, nil, 0o644)
		}},
		{"stale: an older TXID", func(t *testing.T, sc *sidecarCase) {
			// As if the writer was killed between an upload and the
			// position file: it names the TXID before.
			m := sc.sidecar()
			m["min_txid"], m["max_txid"] = "0000000000000001", "0000000000000001"
			sc.setSidecar(m)
		}},
		{"ahead of the replica", func(t *testing.T, sc *sidecarCase) {
			m := sc.sidecar()
			m["min_txid"], m["max_txid"] = "0000000000000003", "0000000000000003"
			sc.setSidecar(m)
		}},
		{"another replica", func(t *testing.T, sc *sidecarCase) {
			m := sc.sidecar()
			m["replica"] = "file:///elsewhere"
			sc.setSidecar(m)
		}},
		{"wrong checksum", func(t *testing.T, sc *sidecarCase) {
			m := sc.sidecar()
			m["checksum"] = "8000000000000001"
			sc.setSidecar(m)
		}},
		{"another page size", func(t *testing.T, sc *sidecarCase) {
			m := sc.sidecar()
			m["page_size"] = 1024
			sc.setSidecar(m)
		}},
		{"another file size", func(t *testing.T, sc *sidecarCase) {
			m := sc.sidecar()
			m["size"] = m["size"].(float64) + 1
			sc.setSidecar(m)
		}},
		{"another database size", func(t *testing.T, sc *sidecarCase) {
			m := sc.sidecar()
			m["commit"] = m["commit"].(float64) + 1
			sc.setSidecar(m)
		}},
		{"unknown field", func(t *testing.T, sc *sidecarCase) {
			m := sc.sidecar()
			m["generation"] = "x"
			sc.setSidecar(m)
		}},
		{"a directory", func(t *testing.T, sc *sidecarCase) {
			os.Remove(sc.path + writer.SidecarSuffix)
			os.Mkdir(sc.path+writer.SidecarSuffix, 0o755)
		}},
		{"no checksum", func(t *testing.T, sc *sidecarCase) {
			m := sc.sidecar()
			m["checksum"] = "0000000000000000"
			sc.setSidecar(m)
		}},
		{"database changed after it", func(t *testing.T, sc *sidecarCase) {
			// The application wrote with no writer running and closed:
			// the changes went into the database file, the WAL is gone.
			// Trusting the position file would lose them for good.
			sc.app = openApp(t, sc.path)
			execSQL(t, sc.app, `UPDATE t SET n = n + 1000 WHERE id % 5 = 0`)
			sc.closeApp()
		}},
		{"another database's history at the same TXID", func(t *testing.T, sc *sidecarCase) {
			// The replica was wiped and another database replicated into
			// it up to the same TXID: the position file names this
			// replica and this TXID, and the database has the checksum
			// it gives, but the replica's history is another's.
			ctx := context.Background()
			if err := sc.c.DeleteAll(ctx); err != nil {
				t.Fatal(err)
			}
			// Same size, one value apart.
			other := filepath.Join(t.TempDir(), "other.db")
			oapp := openApp(t, other)
			insert(t, oapp, 300)
			execSQL(t, oapp, `UPDATE t SET n = -1 WHERE id = 7`)
			r := newReplicator(t, other, sc.c, testOpts())
			mustSync(t, r)
			insert(t, oapp, 10)
			mustSync(t, r)
			if err := r.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := newSidecarCase(t)
			tt.lie(t, sc)
			if n := sc.restart(); n != 1 {
				t.Fatalf("%v whole-database L0 files, want 1: the safe path", n)
			}
		})
	}
}

// TestSidecarWithRestartedWAL: with no writer running, the application
// checkpoints with TRUNCATE and writes again, so the WAL's generation is
// one the replica never saw. The database file has the position file's
// checksum and the new generation holds every change since: it is the
// next file, not a copy of the whole database.
func TestSidecarWithRestartedWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	insert(t, app, 300)
	r1 := newReplicator(t, path, c, testOpts())
	mustSync(t, r1)
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	execSQL(t, app, `PRAGMA wal_checkpoint(TRUNCATE)`)
	insert(t, app, 3)

	opts, reg := withMetrics(testOpts())
	r2 := newReplicator(t, path, c, opts)
	defer r2.Close(ctx)
	mustSync(t, r2)
	if n := metric(t, reg, "ltx_writer_l0_snapshots_total"); n != 0 {
		t.Fatalf("%v whole-database L0 files, want none", n)
	}
	checkRestores(t, c, app, "restore differs from the source")
}

// TestSpoolFilesDoNotLeak: a whole-database L0 file too large for memory
// is spooled to TempDir while it waits for its upload; a writer killed
// meanwhile leaves it, and the next writer of the database and replica
// removes it; a writer closed before its upload succeeded removes its own.
func TestSpoolFilesDoNotLeak(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	temp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(temp, 0o755); err != nil {
		t.Fatal(err)
	}
	app := openApp(t, path)
	// Past the 8 MiB kept in memory, compressed.
	execSQL(t, app, `INSERT INTO t (v, n) SELECT randomblob(1000), value FROM generate_series(1, 10000)`)
	c := noLease{newReplica(t)}
	down := wrap.NewFaulty(c, wrap.FaultyConfig{Write: wrap.Behaviour{ErrorRate: 1}})
	opts := testOpts()
	opts.TempDir = temp
	spools := func() []string {
		t.Helper()
		names, err := filepath.Glob(filepath.Join(temp, "ltx-writer-*"))
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	other, err := os.CreateTemp(temp, "ltx-writer-0123456789abcdef-*.ltx.tmp") // another database's
	if err != nil {
		t.Fatal(err)
	}
	other.Close()

	// Killed: it never closes (until the test ends).
	r1 := newReplicator(t, path, down, opts)
	defer func() {
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		r1.Close(short)
	}()
	if err := r1.Sync(ctx); err == nil {
		t.Fatal("sync with storage down succeeded")
	}
	if n := len(spools()); n != 2 {
		t.Fatalf("%d spool files while the upload fails, want 2 (its own and another database's)", n)
	}
	r2 := newReplicator(t, path, c, opts)
	mustSync(t, r2)
	if got := spools(); len(got) != 1 || got[0] != other.Name() {
		t.Fatalf("spool files after the next writer opened: %v, want only the other database's", got)
	}
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Closed before its upload succeeded.
	execSQL(t, app, `UPDATE t SET v = randomblob(1000)`)
	r3 := newReplicator(t, path, down, opts)
	if err := r3.Sync(ctx); err == nil {
		t.Fatal("sync with storage down succeeded")
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := r3.Close(short); err == nil {
		t.Fatal("close with storage down: the final sync succeeded")
	}
	if got := spools(); len(got) != 1 {
		t.Fatalf("spool files after a close whose final sync failed: %v", got)
	}
}
