package reliability

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/syncbuf"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/vfs"
	"github.com/ltxvfs/ltxvfs/writer"
)

// Helpers of the bad-input tests (bucket_test.go, credentials_test.go):
// storage that goes away or refuses the writer mid-run.

// logBuffer keeps every line a logger wrote, for tests that read what an
// operator would read.
type logBuffer struct{ syncbuf.Buffer }

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitLogged waits until the log holds a line with every one of words,
// and returns it.
func waitLogged(t *testing.T, logs *logBuffer, within time.Duration, words ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, line := range strings.Split(logs.String(), "\n") {
			if containsAll(line, words...) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line of the log says %q within %v; the log:\n%s", words, within, tail(logs.String(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsAll(s string, words ...string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// badInputOpts make a writer that syncs every 50 ms and retries a failed
// sync within 200 ms.
func badInputOpts(logs *logBuffer) writer.Options {
	return writer.Options{
		SyncInterval:     50 * time.Millisecond,
		MaxRetryInterval: 200 * time.Millisecond,
		BusyTimeout:      5 * time.Second,
		LeaseTTL:         3 * time.Second,
		Logger:           logs.logger(),
	}
}

// waitSynced waits until the writer has a TXID past from and no lag.
func waitSynced(t *testing.T, r *writer.Replicator, from ltx.TXID) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); r.TXID() <= from || r.Lag() != 0; time.Sleep(10 * time.Millisecond) {
		if err := r.Err(); err != nil {
			t.Fatalf("replication stopped: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer is at TXID %s (was %s), lag %v, 20 s later", r.TXID(), from, r.Lag())
		}
	}
}

// closeWithin closes the writer, giving its final sync d: Close retries
// the final sync until its context ends, and here storage may be gone.
func closeWithin(r *writer.Replicator, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	r.Close(ctx)
}

// attachReader attaches a replica client to the ltx VFS under a name of
// its own and opens it, following.
func attachReader(t *testing.T, name string, c storage.Client) *sql.DB {
	t.Helper()
	if err := vfs.Attach(name, vfs.Options{Client: c, Poll: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+url.PathEscape(name)+"?vfs=ltx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		vfs.Detach(name)
	})
	return db
}

// readOutcome is what one read under a context returned.
type readOutcome struct {
	txid ltx.TXID
	k    int64
	err  error
	took time.Duration
}

// readWithin reads the model's state through db, following, under a
// context of d; rows that are not the source's after some transaction
// fail the test at once.
func readWithin(t *testing.T, db *sql.DB, m *model, d time.Duration) readOutcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	txid, k, fp, err := faultyRead(ctx, db, 0)
	o := readOutcome{txid: txid, k: k, err: err, took: time.Since(start)}
	if err == nil {
		if cerr := m.check(k, fp); cerr != nil {
			t.Fatalf("a reader read TXID %s: %v", txid, cerr)
		}
	}
	return o
}

// restoreEqualsSource halts the load, syncs the writer and checks that a
// restore of the replica holds every transaction the source committed.
func restoreEqualsSource(t *testing.T, load *appLoad, m *model, r *writer.Replicator, c storage.Client) {
	t.Helper()
	ctx := context.Background()
	load.halt()
	if err := r.Sync(ctx); err != nil {
		t.Fatalf("final sync: %v", err)
	}
	checkRestoreWhole(t, ctx, c, m)
}

// shown quotes an error for a report line.
func shown(err error) string {
	if err == nil {
		return "no error"
	}
	return fmt.Sprintf("%q", truncate(err.Error(), 300))
}

// badRun is a writer replicating a database under an application's load,
// with a reader following it, as the bad-storage tests start them.
type badRun struct {
	path     string
	m        *model
	load     *appLoad
	logs     *logBuffer
	reg      *prometheus.Registry
	r        *writer.Replicator
	follower *sql.DB
}

// startBadRun starts the load, a writer into client (synced once) and a
// follower named name through reader, which has read the source's rows.
func startBadRun(t *testing.T, seed uint64, client, reader storage.Client, name string) *badRun {
	t.Helper()
	b := &badRun{path: filepath.Join(t.TempDir(), "app.db"), m: newModel(seed), logs: &logBuffer{}, reg: prometheus.NewRegistry()}
	b.load = startAppLoad(t, b.path, b.m)
	opts := badInputOpts(b.logs)
	opts.Registerer = b.reg
	r, err := writer.New(b.path, client, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWithin(r, 5*time.Second) })
	b.r = r
	waitSynced(t, r, 0)
	b.follower = attachReader(t, name, reader)
	if o := readWithin(t, b.follower, b.m, 5*time.Second); o.err != nil {
		t.Fatalf("the follower's first read: %v", o.err)
	}
	return b
}
