package writer_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/ltxvfs/ltxvfs/vfs"
	"github.com/ltxvfs/ltxvfs/writer"
)

// readManifest reads and decodes the replica's manifest.
func readManifest(t testing.TB, c storage.Client) (*manifest.Manifest, []byte) {
	t.Helper()
	b, _, err := storage.ReadAllObject(context.Background(), c, manifest.Name, storage.ReadOptions{}, manifest.MaxSize)
	if err != nil {
		t.Fatalf("read the manifest: %v", err)
	}
	m, err := manifest.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return m, b
}

// checkManifest fails unless the replica's manifest decodes and names
// exactly the newest plan of a fresh listing, each file as storage holds
// it (size, file checksum, header time), a large file with the size of its
// hint object, at the commit time of its TXID. It returns the manifest.
func checkManifest(t testing.TB, c storage.Client) *manifest.Manifest {
	t.Helper()
	ctx := context.Background()
	m, _ := readManifest(t, c)
	all, err := storage.ListAll(ctx, c, true)
	if err != nil {
		t.Fatal(err)
	}
	want, err := plan.Restore(all, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got, wantNames []string
	for _, f := range m.Files {
		got = append(got, f.Name())
	}
	for _, f := range want {
		wantNames = append(wantNames, storage.FileName(f.Level, f.MinTXID, f.MaxTXID))
	}
	if strings.Join(got, " ") != strings.Join(wantNames, " ") {
		t.Fatalf("the manifest names %v, the newest plan of the replica is %v", got, wantNames)
	}
	for i, f := range m.Files {
		_, hdr, trailer := decodeAll(t, c, f.Level, f.MinTXID, f.MaxTXID)
		if f.Size != want[i].Size || f.Checksum != trailer.FileChecksum || !f.Created.Equal(time.UnixMilli(hdr.Timestamp)) {
			t.Fatalf("the manifest describes %s as %d bytes, checksum %s, created %s; it is %d bytes, checksum %s, created %s",
				f.Name(), f.Size, f.Checksum, f.Created, want[i].Size, trailer.FileChecksum, time.UnixMilli(hdr.Timestamp))
		}
		if f.Size > manifest.WholeFileMax {
			objs, err := c.ListObjects(ctx, manifest.HintDir)
			if err != nil {
				t.Fatal(err)
			}
			var hintSize int64
			for _, o := range objs {
				if o.Name == manifest.HintName(f.Source()) {
					hintSize = o.Size
				}
			}
			if hintSize == 0 || f.HintSize != hintSize {
				t.Fatalf("the manifest gives %s a hint of %d bytes; its hint object is %d bytes", f.Name(), f.HintSize, hintSize)
			}
		}
	}
	last := m.Files[len(m.Files)-1]
	if m.TXID != last.MaxTXID || !m.Time.Equal(last.Created) {
		t.Fatalf("manifest at TXID %s, %s; its plan ends with %s, created %s", m.TXID, m.Time, last.Name(), last.Created)
	}
	return m
}

var attached atomic.Int64

// readerOpen opens the replica through the ltx VFS as a new reader does
// and returns the rows it reads and the requests that took.
func readerOpen(t testing.TB, c storage.Client) (string, wrap.Counts) {
	t.Helper()
	counting := wrap.NewCounting(c)
	name := fmt.Sprintf("publish-%d", attached.Add(1))
	if err := vfs.Attach(name, vfs.Options{Client: counting, Poll: time.Hour}); err != nil {
		t.Fatal(err)
	}
	defer vfs.Detach(name)
	db, err := sql.Open("sqlite3", "file:"+name+"?vfs=ltx")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return dump(t, db), counting.Counts()
}

// TestManifestAfterEachChange: after a sync, a compaction into L1 and
// into L2, a snapshot and retention, the manifest names exactly the newest
// plan of a fresh listing; it is republished (a higher seq) after each
// change that alters that plan and not after one that does not (nothing
// to sync, retention of files outside the plan); a new reader opens from
// it without listing and reads the application's rows.
func TestManifestAfterEachChange(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	fill(t, app, 3000) // larger than manifest.WholeFileMax: the first file and the snapshots get hints
	c := newReplica(t)
	opts := testOpts()
	opts.L0Retention = writer.NoL0Retention
	opts.SnapshotRetention = time.Millisecond
	opts.CompactionIntervals = []time.Duration{-1, -1}
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	r := newReplicator(t, path, c, opts)
	defer r.Close(ctx)

	var seq uint64
	check := func(what string, republished bool) {
		t.Helper()
		m := checkManifest(t, c)
		if m.TXID != r.TXID() {
			t.Fatalf("after %s: the manifest is at TXID %s, the writer at %s", what, m.TXID, r.TXID())
		}
		if republished != (m.Seq > seq) {
			t.Fatalf("after %s: manifest seq %d after %d; republished: %v, want %v", what, m.Seq, seq, m.Seq > seq, republished)
		}
		seq = m.Seq
		if got := metric(t, reg, "ltx_writer_manifest_txid"); got != float64(m.TXID) {
			t.Fatalf("after %s: ltx_writer_manifest_txid %v, want %d", what, got, m.TXID)
		}
		rows, counts := readerOpen(t, c)
		if rows != dump(t, app) {
			t.Fatalf("after %s: a reader of the manifest reads other rows than the application's", what)
		}
		if counts.Lists+counts.ObjectLists != 0 {
			t.Fatalf("after %s: a reader listed the replica: %+v", what, counts)
		}
	}
	must := func(_ *ltx.FileInfo, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	mustSync(t, r)
	check("the first sync", true)
	mustSync(t, r)
	check("a sync with nothing new", false)
	for range 3 {
		insert(t, app, 10)
		mustSync(t, r)
		check("a sync", true)
	}
	must(r.Compact(ctx, 1))
	check("a compaction into L1", true)
	insert(t, app, 10)
	mustSync(t, r)
	must(r.Compact(ctx, 1))
	must(r.Compact(ctx, 2))
	check("a compaction into L2", true)
	must(r.Snapshot(ctx))
	check("a snapshot", true)
	insert(t, app, 10)
	mustSync(t, r)
	must(r.Snapshot(ctx))
	check("a second snapshot", true)
	insert(t, app, 10)
	mustSync(t, r)
	check("a sync after it", true)

	before, err := storage.ListAll(ctx, c, false)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // the first snapshot expires
	if err := r.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := storage.ListAll(ctx, c, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) >= len(before) || len(listLevel(t, c, storage.SnapshotLevel)) != 1 {
		t.Fatalf("retention left %d of %d files, %d snapshots: the test does not prune", len(after), len(before), len(listLevel(t, c, storage.SnapshotLevel)))
	}
	check("retention of files outside the plan", false)
	if got := metric(t, reg, "ltx_writer_manifest_publishes_total"); got != float64(seq) {
		t.Fatalf("ltx_writer_manifest_publishes_total %v, want %d (one per change of the plan)", got, seq)
	}
}

// TestManifestConflictStopsTheWriter: another writer publishes a manifest
// between two of this writer's: the writer stops with ErrReplicaConflict
// and one line that says so, writes nothing more, and loses nothing: a
// new writer on the database resumes and the replica restores to the
// application's rows.
func TestManifestConflictStopsTheWriter(t *testing.T) {
	forBackends(t, testManifestConflict)
}

// forBackends runs test on a new replica of the file backend and of S3
// (versitygw).
func forBackends(t *testing.T, test func(t *testing.T, c storage.Client)) {
	t.Run("file", func(t *testing.T) { test(t, newReplica(t)) })
	t.Run("s3", func(t *testing.T) { test(t, s3test.Shared(t).NewReplica(t).Client) })
}

func testManifestConflict(t *testing.T, c storage.Client) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insert(t, app, 50)
	opts := testOpts()
	opts.SyncInterval = 10 * time.Millisecond
	r := newReplicator(t, path, c, opts)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	mustSync(t, r)
	m, _ := readManifest(t, c)

	// Another writer's manifest: the same plan, published later.
	other := *m
	other.Seq, other.Published = m.Seq+1, time.Now().UTC()
	theirs, err := other.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteObject(ctx, manifest.Name, bytes.NewReader(theirs), storage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	insert(t, app, 10)
	select {
	case <-r.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the writer did not stop on another writer's manifest")
	}
	err = r.Err()
	if !errors.Is(err, writer.ErrReplicaConflict) || !strings.Contains(err.Error(), "manifest of "+c.String()+" was replaced") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("writer stopped with %v, want ErrReplicaConflict saying that the manifest was replaced, in one line", err)
	}
	l0 := listLevel(t, c, 0)
	insert(t, app, 10)
	if err := r.Sync(ctx); !errors.Is(err, writer.ErrReplicaConflict) {
		t.Fatalf("a sync after the conflict: %v, want ErrReplicaConflict", err)
	}
	if _, err := r.Compact(ctx, 1); !errors.Is(err, writer.ErrReplicaConflict) {
		t.Fatalf("a compaction after the conflict: %v, want ErrReplicaConflict", err)
	}
	if got := listLevel(t, c, 0); len(got) != len(l0) {
		t.Fatalf("the stopped writer wrote %d more L0 files", len(got)-len(l0))
	}
	if _, b := readManifest(t, c); !bytes.Equal(b, theirs) {
		t.Fatal("the stopped writer replaced the other writer's manifest")
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}

	r2 := newReplicator(t, path, c, testOpts())
	defer r2.Close(ctx)
	insert(t, app, 10)
	mustSync(t, r2)
	checkRestores(t, c, app, "the replica lost rows after a writer stopped on a conflict")
	if m2 := checkManifest(t, c); m2.TXID != r2.TXID() || m2.Seq <= other.Seq {
		t.Fatalf("the next writer's manifest: TXID %s seq %d, want TXID %s after seq %d", m2.TXID, m2.Seq, r2.TXID(), other.Seq)
	}
	if rows, counts := readerOpen(t, c); rows != dump(t, app) || counts.Lists != 0 {
		t.Fatalf("a reader after the next writer's sync: %d listings; rows equal: %v", counts.Lists, rows == dump(t, app))
	}
}

// TestManifestRetriedPutIsNoConflict: a manifest write that landed
// though its answer was an error is retried, the retry is refused (the
// ETag moved on), and the writer finds its own manifest in storage: no
// conflict. Nor is an earlier write whose every attempt was answered with
// an error found in storage by the next publish.
func TestManifestRetriedPutIsNoConflict(t *testing.T) {
	forBackends(t, testManifestRetriedPut)
}

func testManifestRetriedPut(t *testing.T, c storage.Client) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insert(t, app, 50)
	faulty := wrap.NewFaulty(c, wrap.FaultyConfig{Seed: 1})
	lossy := &lossyManifest{Client: faulty}
	r := newReplicator(t, path, lossy, testOpts())
	defer r.Close(ctx)
	mustSync(t, r)

	faulty.SetBehaviour(wrap.OpObjectWrite, wrap.Behaviour{AmbiguousRate: 1})
	for range 3 {
		insert(t, app, 10)
		mustSync(t, r)
		if m := checkManifest(t, faulty); m.TXID != r.TXID() {
			t.Fatalf("manifest at TXID %s after an ambiguous write, want %s", m.TXID, r.TXID())
		}
	}
	if n := faulty.Injected().Ambiguous; n < 3 {
		t.Fatalf("%d ambiguous writes injected, want 3 or more", n)
	}
	faulty.SetBehaviour(wrap.OpObjectWrite, wrap.Behaviour{})

	// The first attempt lands, the two retries never reach storage: the
	// publish fails, in doubt. The next one finds that write in storage.
	lossy.script([]bool{true, false, false})
	insert(t, app, 10)
	mustSync(t, r)
	if m, _ := readManifest(t, faulty); m.TXID != r.TXID() {
		t.Fatalf("the lost write did not land: manifest at %s, writer at %s", m.TXID, r.TXID())
	}
	insert(t, app, 10)
	mustSync(t, r)
	if err := r.Err(); err != nil {
		t.Fatalf("the writer stopped: %v", err)
	}
	if m := checkManifest(t, faulty); m.TXID != r.TXID() {
		t.Fatalf("manifest at TXID %s after a write in doubt, want %s", m.TXID, r.TXID())
	}
}

// lossyManifest loses the answers of manifest writes as scripted: each
// scripted write reaches storage or not, and is answered with an error
// either way.
type lossyManifest struct {
	storage.Client
	reach []bool
}

func (c *lossyManifest) script(reach []bool) { c.reach = reach }

func (c *lossyManifest) WriteObject(ctx context.Context, name string, r io.Reader, opts storage.WriteOptions) (storage.ObjectInfo, error) {
	if name != manifest.Name || len(c.reach) == 0 {
		return c.Client.WriteObject(ctx, name, r, opts)
	}
	reach := c.reach[0]
	c.reach = c.reach[1:]
	if reach {
		_, _ = c.Client.WriteObject(ctx, name, r, opts)
	}
	return storage.ObjectInfo{}, errors.New("write manifest: connection reset by peer (test)")
}

// staleManifest serves a fixed copy of the manifest, as a cache that
// kept an older one does; everything else comes from the replica.
type staleManifest struct {
	storage.Client
	b []byte
}

func (c staleManifest) ReadObject(ctx context.Context, name string, opts storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	if name != manifest.Name {
		return c.Client.ReadObject(ctx, name, opts)
	}
	return io.NopCloser(bytes.NewReader(c.b)), storage.ObjectInfo{Name: name, Size: int64(len(c.b)), ETag: "stale"}, nil
}

// TestManifestGrace: retention keeps the files of a manifest that a
// newer one replaced for ManifestGrace, so that a reader that read the
// older one (from a cache, here) opens from it and reads its rows
// without listing; with no grace they go at the retention that follows.
func TestManifestGrace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
		kept  bool
	}{
		{"an hour", time.Hour, true},
		{"none", writer.NoManifestGrace, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "app.db")
			app := openApp(t, path)
			insert(t, app, 50)
			c := newReplica(t)
			opts := testOpts()
			opts.ManifestGrace = tc.grace
			opts.L0Retention = writer.NoL0Retention
			opts.CompactionIntervals = []time.Duration{-1}
			r := newReplicator(t, path, c, opts)
			defer r.Close(ctx)
			mustSync(t, r)
			for range 3 {
				insert(t, app, 10)
				mustSync(t, r)
			}
			old, oldBytes := readManifest(t, c)
			oldRows := dump(t, app)
			if len(old.Files) != 4 {
				t.Fatalf("the manifest names %d files, want the 4 L0 files", len(old.Files))
			}
			if _, err := r.Compact(ctx, 1); err != nil {
				t.Fatal(err)
			}
			insert(t, app, 10)
			mustSync(t, r)
			if err := r.EnforceRetention(ctx); err != nil {
				t.Fatal(err)
			}
			checkManifest(t, c)
			left := 0
			for _, f := range old.Files {
				for _, l := range listLevel(t, c, f.Level) {
					if l.MinTXID == f.MinTXID && l.MaxTXID == f.MaxTXID {
						left++
					}
				}
			}
			if !tc.kept {
				if left != 0 {
					t.Fatalf("%d files of the replaced manifest survived retention with no grace", left)
				}
				return
			}
			if left != len(old.Files) {
				t.Fatalf("retention deleted %d files of a manifest replaced within the grace", len(old.Files)-left)
			}
			rows, counts := readerOpen(t, staleManifest{Client: c, b: oldBytes})
			if rows != oldRows || counts.Lists+counts.ObjectLists != 0 {
				t.Fatalf("a reader of the replaced manifest: %d listings; rows of its TXID: %v", counts.Lists+counts.ObjectLists, rows == oldRows)
			}
		})
	}
}

// TestNoManifest: with NoManifest the manifest an earlier writer left is
// removed at the first sync, none is written after, and readers list the
// replica and read the application's rows.
func TestNoManifest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insert(t, app, 50)
	c := newReplica(t)
	r1 := newReplicator(t, path, c, testOpts())
	mustSync(t, r1)
	checkManifest(t, c)
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}

	opts := testOpts()
	opts.NoManifest = true
	r2 := newReplicator(t, path, c, opts)
	defer r2.Close(ctx)
	insert(t, app, 10)
	mustSync(t, r2)
	if _, err := r2.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	insert(t, app, 10)
	mustSync(t, r2)
	if _, _, err := storage.ReadAllObject(ctx, c, manifest.Name, storage.ReadOptions{}, manifest.MaxSize); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read the manifest of a writer with NoManifest: %v, want none", err)
	}
	rows, counts := readerOpen(t, c)
	if rows != dump(t, app) || counts.Lists == 0 {
		t.Fatalf("a reader without a manifest: %d listings; rows equal: %v", counts.Lists, rows == dump(t, app))
	}
}

// TestManifestWithoutHints: with NoHints the manifest names the larger
// files without a hint (readers read their page index from the file), and
// a reader still opens from it without listing.
func TestManifestWithoutHints(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	fill(t, app, 3000)
	c := newReplica(t)
	opts := testOpts()
	opts.NoHints = true
	r := newReplicator(t, path, c, opts)
	defer r.Close(ctx)
	mustSync(t, r)
	if _, err := r.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	insert(t, app, 10)
	mustSync(t, r)
	m, _ := readManifest(t, c)
	if m.TXID != r.TXID() || m.Files[0].Size <= manifest.WholeFileMax || m.Files[0].HintSize != 0 || m.Files[0].Level != storage.SnapshotLevel {
		t.Fatalf("manifest at TXID %s (writer %s) begins with %s of %d bytes, hint %d; want the snapshot, without a hint",
			m.TXID, r.TXID(), m.Files[0].Name(), m.Files[0].Size, m.Files[0].HintSize)
	}
	if rows, counts := readerOpen(t, c); rows != dump(t, app) || counts.Lists+counts.ObjectLists != 0 {
		t.Fatalf("a reader of a manifest without hints: %d listings; rows equal: %v", counts.Lists+counts.ObjectLists, rows == dump(t, app))
	}
}

// TestManifestAfterALostSnapshotAnswer: a snapshot whose upload landed
// though the writer was told it failed (an answer lost, or an upload
// cancelled as it ended, at Close) is in the replica all the same, and
// makes its newest plan: the next manifest names it.
func TestManifestAfterALostSnapshotAnswer(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insert(t, app, 5)
	c := newReplica(t)
	lost := &lostSnapshotAnswers{Client: c}
	r := newReplicator(t, path, lost, testOpts())
	for range 2 {
		insert(t, app, 5)
		mustSync(t, r)
	}
	lost.armed.Store(true)
	if _, err := r.Snapshot(ctx); err == nil {
		t.Fatal("a snapshot whose answer was lost succeeded: the test tests nothing")
	}
	mustSync(t, r) // nothing new to copy; the manifest is published again
	if m := checkManifest(t, c); len(m.Files) != 1 || m.Files[0].Level != storage.SnapshotLevel {
		t.Fatalf("the manifest names %d files, want the snapshot alone", len(m.Files))
	}
}

// lostSnapshotAnswers, once armed, stores snapshots and reports that
// storing them failed.
type lostSnapshotAnswers struct {
	storage.Client
	armed atomic.Bool
}

func (c *lostSnapshotAnswers) Unwrap() storage.Client { return c.Client }

func (c *lostSnapshotAnswers) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	info, err := c.Client.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
	if err == nil && level == storage.SnapshotLevel && c.armed.Load() {
		return nil, errors.New("the answer was lost")
	}
	return info, err
}
