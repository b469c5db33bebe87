package vfs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/storage"
	filereplica "github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/ltxvfs/ltxvfs/writer"
)

// manifestFollowFor is how long TestManifestFollow follows a writer under
// load: a few seconds, or LTXVFS_MANIFEST_FOLLOW (a Go duration, such as
// 1m) for the long run.
func manifestFollowFor(tb testing.TB) time.Duration {
	s := os.Getenv("LTXVFS_MANIFEST_FOLLOW")
	if s == "" {
		return 3 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		tb.Fatalf("LTXVFS_MANIFEST_FOLLOW=%q: %v", s, err)
	}
	return d
}

// TestManifestFollow: a follower (poll=50ms) of a replica whose writer
// syncs every 50 ms, compacts every 200 ms and 400 ms, snapshots every
// second and prunes within a second, under a write load, makes no LIST
// after its open; every read transaction reads the primary's rows after
// some commit, never going back; the manifest is republished through
// compactions, snapshots and pruning, and always names files that exist.
// On the file backend and on S3 (versitygw).
func TestManifestFollow(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "replica")
		followManifest(t, filereplica.New(dir), filereplica.New(dir))
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Shared(t)
		rep := srv.NewReplica(t)
		followManifest(t, rep.Client, srv.Client(t, rep.URL))
	})
}

// followModel is the primary's table t after commit k: rows 1..k; commit j
// inserts row j with v = j and adds 1 to v of row (j+1)/2.
func followModel(k int64) (count, sumV, sumIDV int64) {
	for i := int64(1); i <= k; i++ {
		v := i
		for _, j := range []int64{2*i - 1, 2 * i} {
			if j <= k {
				v++
			}
		}
		sumV += v
		sumIDV += i * v
	}
	return k, sumV, sumIDV
}

// followGrace is the writer's ManifestGrace in TestManifestFollow: far
// longer than any read transaction of the follower.
const followGrace = time.Second

func followManifest(t *testing.T, wc, rc storage.Client) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "primary.db")
	app, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for _, q := range []string{
		`CREATE TABLE base(id INTEGER PRIMARY KEY, b BLOB)`,
		// Larger than manifest.WholeFileMax: snapshots and the first file get hints.
		`INSERT INTO base(b) SELECT randomblob(200) FROM generate_series(1, 2000)`,
		`CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER, pad TEXT)`,
	} {
		if _, err := app.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	w, err := writer.New(path, wc, writer.Options{
		SyncInterval:        50 * time.Millisecond,
		CompactionIntervals: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond},
		SnapshotInterval:    time.Second,
		SnapshotRetention:   time.Second,
		L0Retention:         300 * time.Millisecond,
		ManifestGrace:       followGrace,
		MinCheckpointPages:  100,
		CheckpointInterval:  500 * time.Millisecond,
		Logger:              slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registerer:          reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// The follower.
	counting := wrap.NewCounting(rc)
	name := "follow-manifest-" + filepath.Base(t.Name())
	if err := Attach(name, Options{Client: counting, Poll: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	defer Detach(name)
	db, err := sql.Open("sqlite3", "file:"+name+"?vfs=ltx")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := one[int64](t, conn, `SELECT count(*) FROM base`); got != 2000 {
		t.Fatalf("base has %d rows, want 2000", got)
	}
	counting.Reset()
	followStart := time.Now()

	// The load: commit k inserts row k and bumps row (k+1)/2.
	var committed atomic.Int64
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan error, 1)
	go func() {
		for k := int64(1); loadCtx.Err() == nil; k++ {
			tx, err := app.Begin()
			if err == nil {
				_, err = tx.Exec(`INSERT INTO t(id, v, pad) VALUES (?, ?, printf('%0300d', ?))`, k, k, k)
			}
			if err == nil {
				_, err = tx.Exec(`UPDATE t SET v = v + 1 WHERE id = ?`, (k+1)/2)
			}
			if err == nil {
				err = tx.Commit()
			}
			if err != nil {
				loadDone <- fmt.Errorf("commit %d: %w", k, err)
				return
			}
			committed.Store(k)
			time.Sleep(2 * time.Millisecond)
		}
		loadDone <- nil
	}()

	// The manifest as published, watched from outside.
	watch := newManifestWatch(wc)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for watchCtx.Err() == nil {
			watch.look(watchCtx)
			time.Sleep(50 * time.Millisecond)
		}
	}()

	// The follower reads, one read transaction at a time.
	var reads, lastK int64
	var lastTXID ltx.TXID
	read := func() {
		t.Helper()
		tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var count, sumV, sumIDV int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(v), 0), coalesce(sum(id*v), 0) FROM t`).Scan(&count, &sumV, &sumIDV); err != nil {
			t.Fatalf("follower read %d: %v", reads, err)
		}
		var txidText string
		if err := tx.QueryRowContext(ctx, `PRAGMA ltx_txid`).Scan(&txidText); err != nil {
			t.Fatal(err)
		}
		var txid ltx.TXID
		fmt.Sscan(txidText, &txid)
		if c, v, iv := followModel(count); c != count || v != sumV || iv != sumIDV {
			t.Fatalf("follower read at TXID %s: %d rows with sums %d, %d; the primary after commit %d had sums %d, %d", txidText, count, sumV, sumIDV, count, v, iv)
		}
		if count < lastK || txid < lastTXID || (txid == lastTXID && count != lastK) {
			t.Fatalf("follower went from commit %d at TXID %s to commit %d at TXID %s", lastK, lastTXID, count, txid)
		}
		lastK, lastTXID = count, txid
		reads++
	}
	duration := manifestFollowFor(t)
	limit := time.Now().Add(duration + 30*time.Second)
	for time.Since(followStart) < duration || !watch.exercised() {
		if time.Now().After(limit) {
			t.Fatalf("the writer did not compact, snapshot and prune under the follower in time: %s", watch)
		}
		read()
		time.Sleep(10 * time.Millisecond)
	}
	stopLoad()
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	final := committed.Load()
	for deadline := time.Now().Add(30 * time.Second); lastK < final; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the follower is at commit %d, 30 s after the primary's %d was synced", lastK, final)
		}
		read()
	}
	followed := time.Since(followStart)
	counts := counting.Counts()
	stopWatch()
	<-watchDone
	publishes := counterValue(t, reg, "ltx_writer_manifest_publishes_total")
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	if watch.err != nil {
		t.Fatal(watch.err)
	}

	// Once the writer is done, its manifest names the newest plan.
	m, err := readManifestOf(ctx, wc)
	if err != nil {
		t.Fatal(err)
	}
	all, err := storage.ListAll(ctx, wc, false)
	if err != nil {
		t.Fatal(err)
	}
	planned, err := plan.Restore(all, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(planned) != len(m.Files) || m.TXID != planned[len(planned)-1].MaxTXID {
		t.Fatalf("the final manifest names %d files up to TXID %s; the newest plan is %d files up to %s", len(m.Files), m.TXID, len(planned), planned[len(planned)-1].MaxTXID)
	}
	for i, f := range planned {
		if got := m.Files[i]; got.Level != f.Level || got.MinTXID != f.MinTXID || got.MaxTXID != f.MaxTXID || got.Size != f.Size {
			t.Fatalf("the final manifest names %s where the newest plan has %s", got.Name(), storage.FileName(f.Level, f.MinTXID, f.MaxTXID))
		}
	}

	if counts.Lists+counts.ObjectLists != 0 {
		t.Errorf("the follower listed the replica %d times (LTX levels) and %d times (objects) while following", counts.Lists, counts.ObjectLists)
	}
	polls := float64(followed) / float64(50*time.Millisecond)
	t.Logf("followed %s: %d read transactions up to commit %d (TXID %s); %d manifests published (%s)",
		followed.Round(time.Millisecond), reads, final, lastTXID, int(publishes), watch)
	t.Logf("follower requests after its open: %d in ~%.0f poll intervals (%.2f per poll): %d object reads (%d answered 304, %.2f per poll), %d ranged LTX reads, %d LIST",
		counts.Requests(), polls, float64(counts.Requests())/polls, counts.ObjectReads, counts.ObjectNotModified,
		float64(counts.ObjectReads)/polls, counts.Opens, counts.Lists+counts.ObjectLists)
}

// counterValue is the value of a counter of reg (labelled or not).
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func readManifestOf(ctx context.Context, c storage.Client) (*manifest.Manifest, error) {
	b, _, err := storage.ReadAllObject(ctx, c, manifest.Name, storage.ReadOptions{}, manifest.MaxSize)
	if err != nil {
		return nil, err
	}
	return manifest.Decode(b)
}

// manifestWatch reads the manifest over and over, checks that every file
// it names is in a listing made right after, and remembers what its plans
// held and what the listings lost.
type manifestWatch struct {
	c storage.Client

	mu       sync.Mutex
	seqs     int    // manifests seen
	lastSeq  uint64 // of the last one
	inPlan   map[int]int
	listed   map[string]int // file name -> level, at the last listing
	deleted  map[int]int
	err      error
	lastTXID ltx.TXID
}

func newManifestWatch(c storage.Client) *manifestWatch {
	return &manifestWatch{c: c, inPlan: map[int]int{}, deleted: map[int]int{}}
}

func (w *manifestWatch) look(ctx context.Context) {
	m, err := readManifestOf(ctx, w.c)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, os.ErrNotExist) {
			w.fail(fmt.Errorf("read the manifest: %w", err))
		}
		return
	}
	all, err := storage.ListAll(ctx, w.c, false)
	if err != nil {
		return
	}
	listed := make(map[string]int, len(all))
	for _, f := range all {
		listed[storage.FileName(f.Level, f.MinTXID, f.MaxTXID)] = f.Level
	}
	for _, f := range m.Files {
		if _, ok := listed[f.Name()]; !ok {
			// Only a manifest replaced longer than the grace ago may
			// name a file retention deleted.
			if now, err := readManifestOf(ctx, w.c); err == nil && now.Seq != m.Seq && time.Since(now.Published) >= followGrace {
				break
			}
			w.fail(fmt.Errorf("manifest seq %d (TXID %s) names %s, which is not in the replica", m.Seq, m.TXID, f.Name()))
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if m.TXID < w.lastTXID {
		w.err = cmpErr(w.err, fmt.Errorf("the manifest went back from TXID %s to %s", w.lastTXID, m.TXID))
	}
	w.lastTXID = m.TXID
	if m.Seq != w.lastSeq {
		w.seqs++
		w.lastSeq = m.Seq
		seen := map[int]bool{}
		for _, f := range m.Files {
			if !seen[f.Level] {
				w.inPlan[f.Level]++
				seen[f.Level] = true
			}
		}
	}
	for name, level := range w.listed {
		if _, ok := listed[name]; !ok {
			w.deleted[level]++
		}
	}
	w.listed = listed
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}

func (w *manifestWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = cmpErr(w.err, err)
}

// exercised: manifests whose plans held L1, L2 and snapshot files were
// published, and retention deleted L0 files and snapshots meanwhile.
func (w *manifestWatch) exercised() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inPlan[1] > 0 && w.inPlan[2] > 0 && w.inPlan[storage.SnapshotLevel] > 1 &&
		w.deleted[0] > 0 && w.deleted[storage.SnapshotLevel] > 0
}

func (w *manifestWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("%d seen by the watcher; plans with L1: %d, L2: %d, a snapshot: %d; deleted by retention: L0 %d, L1 %d, L2 %d, snapshots %d",
		w.seqs, w.inPlan[1], w.inPlan[2], w.inPlan[storage.SnapshotLevel], w.deleted[0], w.deleted[1], w.deleted[2], w.deleted[storage.SnapshotLevel])
}
