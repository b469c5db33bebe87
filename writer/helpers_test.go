package writer_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// testOpts are fast options for tests: no background sync, small
// checkpoint thresholds, retention not held up by manifests replaced
// (tests of that set ManifestGrace); tests call Sync, Compact and
// Snapshot themselves.
func testOpts() writer.Options {
	return writer.Options{
		ManifestGrace:      writer.NoManifestGrace,
		SyncInterval:       -1,
		SnapshotInterval:   -1,
		MinCheckpointPages: 50,
		TruncatePages:      500,
		CheckpointInterval: -1,
		BusyTimeout:        2 * time.Second,
	}
}

// openApp opens the application's connection pool on a new database with
// a table.
func openApp(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT, n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func execSQL(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// insert adds n rows with values that make pages differ.
func insert(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := tx.Exec(`INSERT INTO t (v, n) VALUES (?, ?)`, strings.Repeat(fmt.Sprint(i), 20), i); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// dump is the logical content of the user tables: what a user would
// compare.
func dump(t testing.TB, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT id, v, n FROM t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, n int64
		var v string
		if err := rows.Scan(&id, &v, &n); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d|%s|%d\n", id, v, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// dumpFile dumps a database file opened on its own.
func dumpFile(t testing.TB, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return dump(t, db)
}

// restoreDump restores the replica at txid (0: newest) and dumps it.
func restoreDump(t testing.TB, c storage.Client, opts restore.Options) (string, *restore.Result) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "restored.db")
	res, err := restore.Run(context.Background(), c, dst, opts)
	if err != nil {
		t.Fatalf("restore %+v: %v", opts, err)
	}
	return dumpFile(t, dst), res
}

// l0Files lists L0.
func listLevel(t testing.TB, c storage.Client, level int) []*ltx.FileInfo {
	t.Helper()
	infos, err := storage.ListLevel(context.Background(), c, level, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	return infos
}

// checkContiguous fails unless L0 holds TXIDs from..to, one file each.
func checkContiguous(t testing.TB, c storage.Client, from ltx.TXID) []*ltx.FileInfo {
	t.Helper()
	l0 := listLevel(t, c, 0)
	next := from
	for _, f := range l0 {
		if f.MinTXID != next || f.MaxTXID != next {
			t.Fatalf("L0 has %s where TXID %s was expected (gap or duplicate)", ltx.FormatFilename(f.MinTXID, f.MaxTXID), next)
		}
		next++
	}
	return l0
}

func newReplica(t testing.TB) *file.Client {
	return file.New(filepath.Join(t.TempDir(), "replica"))
}

func newReplicator(t testing.TB, path string, c storage.Client, opts writer.Options) *writer.Replicator {
	t.Helper()
	r, err := writer.New(path, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustSync(t testing.TB, r *writer.Replicator) {
	t.Helper()
	if err := r.Sync(context.Background()); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// metric returns the value of a counter or gauge in reg (summed over
// labels that are not given).
func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// checkpointAll runs the application's checkpoints in every mode, on a
// connection that does not wait long for the writer's read transaction.
func checkpointAll(t testing.TB, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(10)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, mode := range []string{"PASSIVE", "FULL", "RESTART", "TRUNCATE"} {
		var busy, log, ckpt int
		db.QueryRow(`PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &ckpt)
	}
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }

// checkRestores fails unless L0 holds TXIDs from 1 on, one file each, and
// the replica restores to what app holds now; msg says what differs.
func checkRestores(t testing.TB, c storage.Client, app *sql.DB, msg string) {
	t.Helper()
	checkContiguous(t, c, 1)
	if got, _ := restoreDump(t, c, restore.Options{}); got != dump(t, app) {
		t.Fatal(msg)
	}
}
