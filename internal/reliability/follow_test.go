package reliability

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// busyWriterOpts make a writer that syncs, checkpoints, compacts,
// snapshots and prunes many times a second.
func busyWriterOpts() writer.Options {
	return writer.Options{
		SyncInterval:        15 * time.Millisecond,
		CompactionIntervals: []time.Duration{100 * time.Millisecond, 400 * time.Millisecond, 1200 * time.Millisecond},
		SnapshotInterval:    600 * time.Millisecond,
		SnapshotRetention:   1500 * time.Millisecond,
		L0Retention:         300 * time.Millisecond,
		ManifestGrace:       300 * time.Millisecond, // pinned readers outlive it: rule 5 serves them
		MinCheckpointPages:  40,
		TruncatePages:       400,
		CheckpointInterval:  200 * time.Millisecond,
		BusyTimeout:         5 * time.Second,
		Logger:              slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// levelWatcher lists the replica's levels over and over and remembers
// every file it saw come and go.
type levelWatcher struct {
	client  storage.Client
	mu      sync.Mutex
	live    map[string]*ltx.FileInfo
	written [storage.SnapshotLevel + 1]int
	deleted [storage.SnapshotLevel + 1]int
}

func watchLevels(ctx context.Context, client storage.Client, every time.Duration) (*levelWatcher, func()) {
	w := &levelWatcher{client: client, live: map[string]*ltx.FileInfo{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			w.scan(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
		}
	}()
	return w, func() { <-done; w.scan(context.Background()) }
}

func (w *levelWatcher) scan(ctx context.Context) {
	now := map[string]*ltx.FileInfo{}
	for level := 0; level <= storage.SnapshotLevel; level++ {
		infos, err := storage.ListLevel(ctx, w.client, level, 0, false)
		if err != nil {
			return
		}
		for _, f := range infos {
			now[storage.FileName(f.Level, f.MinTXID, f.MaxTXID)] = f
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, f := range now {
		if w.live[name] == nil {
			w.written[f.Level]++
		}
	}
	for name, f := range w.live {
		if now[name] == nil {
			w.deleted[f.Level]++
		}
	}
	w.live = now
}

// TestFollowConsistency runs a bank-transfer load on the primary while the
// writer syncs, checkpoints, compacts, snapshots and prunes many times a
// second, and many connections read the replica through the ltx VFS:
// followers (poll=50ms) check the invariants in every read transaction and
// never go back in TXIDs; pinned connections, at TXIDs seen a while ago,
// keep reading while retention deletes files under them and must read the
// same rows as before or fail with an error. Every TXID must read the
// same on every connection, every time. Zero violations.
func TestFollowConsistency(t *testing.T) {
	seed := testSeed(t)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "bank.db")
	replicaDir := filepath.Join(dir, "replica")
	primary := openBank(t, path)
	client := file.New(replicaDir)

	r, err := writer.New(path, client, busyWriterOpts())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	watcher, waitWatch := watchLevels(watchCtx, client, 20*time.Millisecond)

	// A page cache of a few dozen pages: pinned connections go back to
	// storage for pages that retention may have deleted meanwhile.
	dsn := "file:bank.db?vfs=ltx&poll=50ms&pagecache=256KiB&replica=" + url.QueryEscape(replicaDir)
	readCtx, stopReaders := context.WithCancel(ctx)
	var (
		wg           sync.WaitGroup
		checks       atomic.Int64
		pinnedChecks atomic.Int64
		violations   = make(chan error, 100)
		followerErrs errorKinds
		pinnedErrs   errorKinds
		seen         = newDigests()
		pinnedTXIDs  atomic.Int64
		pinnedOpened atomic.Int64
	)
	violation := func(err error) {
		select {
		case violations <- err:
		default:
		}
	}

	const followers, pinned = 10, 4
	followDB, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer followDB.Close()
	followDB.SetMaxOpenConns(followers + 1)
	lastSeen := make([]atomic.Uint64, followers)
	for g := range followers {
		wg.Go(func() {
			conn, err := followDB.Conn(readCtx)
			if err != nil {
				violation(fmt.Errorf("follower %d: %w", g, err))
				return
			}
			defer conn.Close()
			for readCtx.Err() == nil {
				st, err := checkBank(readCtx, conn, true)
				if err != nil {
					if errors.Is(err, errViolation) {
						violation(fmt.Errorf("follower %d at TXID %s: %w", g, st.txid, err))
						return
					}
					if readCtx.Err() == nil {
						followerErrs.add(err)
					}
					continue
				}
				n, _ := strconv.ParseUint(st.txid, 10, 64)
				if last := lastSeen[g].Load(); n < last {
					violation(fmt.Errorf("%w: follower %d read TXID %d after %d", errViolation, g, n, last))
					return
				}
				lastSeen[g].Store(n)
				if err := seen.see(st); err != nil {
					violation(fmt.Errorf("follower %d: %w", g, err))
					return
				}
				checks.Add(1)
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	for g := range pinned {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(100+g)))
			for readCtx.Err() == nil {
				txid, ok := seen.pick(rng)
				if !ok {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				n, opened := pinnedSession(readCtx, dsn, txid, seen, &pinnedErrs, violation)
				pinnedChecks.Add(int64(n))
				checks.Add(int64(n))
				pinnedTXIDs.Add(1)
				if opened {
					pinnedOpened.Add(1)
				}
			}
		})
	}

	// The load.
	b := &bank{db: primary, rng: rand.New(rand.NewPCG(seed, 2))}
	start := time.Now()
	for (time.Since(start) < *followDuration || !watcher.exercised()) && len(violations) == 0 {
		if time.Since(start) > *followDuration+2*time.Minute {
			t.Fatalf("the writer did not compact, snapshot and prune under the readers in time: written %v, deleted %v", watcher.written, watcher.deleted)
		}
		if err := b.transfer(ctx); err != nil {
			t.Fatalf("transfer: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	loadTime := time.Since(start)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	final := r.TXID()

	// Every follower catches up with the final TXID.
	deadline := time.Now().Add(30 * time.Second)
	for g := 0; g < followers && len(violations) == 0; {
		if lastSeen[g].Load() >= uint64(final) {
			g++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower %d is still at TXID %d, 30s after the writer reached %s", g, lastSeen[g].Load(), final)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopReaders()
	wg.Wait()
	stopWatch()
	waitWatch()
	close(violations)
	for err := range violations {
		t.Error(err)
	}

	// The replica holds the primary.
	want := bankDigest(t, primary)
	if got := seen.m[strconv.FormatUint(uint64(final), 10)]; got != want {
		t.Errorf("the followers read the final TXID %s as %x; the primary is %x", final, got, want)
	}
	dst := filepath.Join(dir, "restored.db")
	if _, err := restore.Run(ctx, client, dst, restore.Options{}); err != nil {
		t.Fatal(err)
	}
	restored, err := sql.Open("sqlite3", "file:"+dst+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if got := bankDigest(t, restored); got != want {
		t.Errorf("the restored replica is %x; the primary is %x", got, want)
	}

	t.Logf("%d invariant checks in read transactions (%d on pinned connections; %d pinned sessions, %d opened); %d TXIDs read; %d bank transactions; final TXID %s",
		checks.Load(), pinnedChecks.Load(), pinnedTXIDs.Load(), pinnedOpened.Load(), len(seen.m), b.txns, final)
	t.Logf("files written by level %v, deleted by retention %v (the load ran %s)", watcher.written, watcher.deleted, loadTime.Round(time.Millisecond))
	if n := followerErrs.total(); n > 0 {
		t.Errorf("%d read errors on following connections, which retention must never cause:\n%s", n, followerErrs.String())
	}
	t.Logf("errors on pinned connections (the TXID pruned away): %d\n%s", pinnedErrs.total(), pinnedErrs.String())

}

// exercised reports whether the writer has compacted, snapshotted and
// pruned under the readers, more than once each.
func (w *levelWatcher) exercised() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, level := range []int{0, 1, 2, storage.SnapshotLevel} {
		if w.written[level] < 2 {
			return false
		}
	}
	return w.deleted[0] > 0 && w.deleted[storage.SnapshotLevel] > 0
}

// pinnedSession pins a fresh connection at txid and checks it over and
// over, for longer than retention keeps files. A read either matches what
// the TXID held before or fails with an error that names the TXID; it
// returns the checks that passed, and whether the connection opened.
func pinnedSession(ctx context.Context, dsn, txid string, seen *digests, errs *errorKinds, violation func(error)) (int, bool) {
	db, err := sql.Open("sqlite3", dsn+"&txid="+txid)
	if err != nil {
		violation(err)
		return 0, false
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err == nil {
		// The open reads page 1 only when a statement runs.
		_, err = checkBank(ctx, conn, false)
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		if errors.Is(err, errViolation) {
			violation(fmt.Errorf("pinned at TXID %s: %w", txid, err))
		} else if ctx.Err() == nil {
			unclear(err, txid, violation)
			errs.add(fmt.Errorf("open: %w", err))
		}
		return 0, false
	}
	defer conn.Close()
	n := 0
	for i := 0; i < 50 && ctx.Err() == nil; i++ {
		st, err := checkBank(ctx, conn, true)
		if err != nil {
			if errors.Is(err, errViolation) {
				violation(fmt.Errorf("pinned at TXID %s: %w", txid, err))
			} else if ctx.Err() == nil {
				unclear(err, txid, violation)
				errs.add(fmt.Errorf("read after %d checks: %w", n, err))
			}
			return n, true
		}
		if st.txid != txid {
			violation(fmt.Errorf("%w: a connection pinned at TXID %s read TXID %s", errViolation, txid, st.txid))
			return n, true
		}
		if err := seen.see(st); err != nil {
			violation(fmt.Errorf("pinned: %w", err))
			return n, true
		}
		n++
		time.Sleep(50 * time.Millisecond)
	}
	return n, true
}

// unclear reports a read error on a pinned connection that does not say
// which TXID could not be read.
func unclear(err error, txid string, violation func(error)) {
	n, _ := strconv.ParseUint(txid, 10, 64)
	msg := err.Error()
	if !strings.Contains(msg, txid) && !strings.Contains(msg, ltx.TXID(n).String()) {
		violation(fmt.Errorf("a read pinned at TXID %s failed with an error that does not name it: %w", txid, err))
	}
}

func openBank(t *testing.T, path string) *sql.DB {
	t.Helper()
	// IMMEDIATE: a fold reads before it writes, and a deferred transaction
	// that does so fails at once (SQLITE_BUSY) when another connection,
	// the writer's sequence-table update included, wrote in between.
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(bankSchema); err != nil {
		t.Fatal(err)
	}
	return db
}

// bankDigest checks the bank's invariants on db and returns its digest.
func bankDigest(t *testing.T, db *sql.DB) uint64 {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := checkBank(context.Background(), conn, false)
	if err != nil {
		t.Fatal(err)
	}
	return st.digest
}
