package writer_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	ltxs3 "github.com/ltxvfs/ltxvfs/storage/s3"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
	"github.com/ltxvfs/ltxvfs/writer"
)

// TestS3 replicates into a real S3 server (each of s3test.Kinds): L0
// files, a compaction and a snapshot are written, a second writer is
// refused by the lease, and the replica restores at the newest TXID and by
// time, through the object metadata timestamps; its manifest names the
// newest plan.
func TestS3(t *testing.T) { s3test.ForEach(t, testS3) }

func testS3(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	rep := srv.NewReplica(t)
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	r := newReplicator(t, path, rep.Client, testOpts())
	defer r.Close(ctx)

	insert(t, app, 100)
	mustSync(t, r)
	var recs []recorded
	for i := 0; i < 4; i++ {
		insert(t, app, 30)
		execSQL(t, app, `UPDATE t SET n = n + 1 WHERE id % 3 = 0`)
		mustSync(t, r)
		recs = append(recs, recorded{txid: r.TXID(), at: time.Now(), dump: dump(t, app)})
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := r.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	insert(t, app, 5)
	mustSync(t, r)
	checkContiguous(t, rep.Client, 1)
	for _, level := range []int{1, storage.SnapshotLevel} {
		if len(listLevel(t, rep.Client, level)) == 0 {
			t.Fatalf("no L%d file in S3", level)
		}
	}
	if got, _ := restoreDump(t, rep.Client, restore.Options{}); got != dump(t, app) {
		t.Fatal("restore from S3 differs from the source")
	}
	for _, rec := range recs {
		if got, _ := restoreDump(t, rep.Client, restore.Options{Time: rec.at}); got != rec.dump {
			t.Fatalf("restore from S3 at the time of TXID %s differs from the source then", rec.txid)
		}
	}

	// Another database's writer on the same replica is refused: S3 grants
	// a lease (a conditional PUT of <prefix>/.ltx-writer.lease), naming
	// the holder.
	other := filepath.Join(t.TempDir(), "other.db")
	insert(t, openApp(t, other), 3)
	r2 := newReplicator(t, other, srv.Client(t, rep.URL), testOpts())
	defer r2.Close(ctx)
	if err := r2.Sync(ctx); !errors.Is(err, writer.ErrReplicaConflict) || !strings.Contains(err.Error(), r.Path()) {
		t.Fatalf("second writer on S3: got %v, want ErrReplicaConflict naming the first", err)
	}
	insert(t, app, 1)
	mustSync(t, r)
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkRestores(t, rep.Client, app, "restore from S3 differs from the source after a second writer was refused")
	if m := checkManifest(t, rep.Client); m.TXID != r.TXID() {
		t.Fatalf("the manifest in S3 is at TXID %s, the writer ended at %s", m.TXID, r.TXID())
	}
}

// syncedS3Writer replicates a new database of 50 rows into a new replica
// on srv, with a writer made with opts, whose lease lasts
// ttl.
func syncedS3Writer(t *testing.T, srv *s3test.Server, ttl time.Duration) (rep *s3test.Replica, app *sql.DB, opts writer.Options, r *writer.Replicator) {
	t.Helper()
	rep = srv.NewReplica(t)
	path := filepath.Join(t.TempDir(), "app.db")
	app = openApp(t, path)
	insert(t, app, 50)
	opts = testOpts()
	opts.LeaseTTL = ttl
	r = newReplicator(t, path, rep.Client, opts)
	mustSync(t, r)
	return rep, app, opts, r
}

// TestS3LeaseTakeover: a writer that crashed holding the S3 lease (it
// never released it) keeps others out until the lease lapses; then the
// next writer takes it over and goes on at the next TXID.
func TestS3LeaseTakeover(t *testing.T) { s3test.ForEach(t, testS3LeaseTakeover) }

func testS3LeaseTakeover(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	rep, app, opts, r1 := syncedS3Writer(t, srv, time.Second)
	path, txid := r1.Path(), r1.TXID()
	// The crash: r1 stops here, its lease neither renewed nor released.
	// An open Replicator renews its lease until Close releases it, so
	// the crashed writer's lease is planted in its place: one whose
	// holder cannot be proven gone (it ran on another machine).
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	crashed := lease.Holder{Owner: "ltx-writer pid 1 on elsewhere for " + r1.Path(), Path: r1.Path(),
		Host: "elsewhere", PID: 1, BootID: "0b0e5c1a-0000-4000-8000-000000000000", PIDNamespace: "pid:[1]"}
	if _, err := srv.Client(t, rep.URL).AcquireLease(ctx, crashed, opts.LeaseTTL); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client(t, rep.URL).AcquireLease(ctx, lease.Holder{Owner: "another writer"}, time.Second); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("lease while the first writer holds it: %v, want ErrLeaseHeld", err)
	}

	insert(t, app, 5)
	var r2 *writer.Replicator
	deadline := time.Now().Add(15 * time.Second)
	for {
		r2 = newReplicator(t, path, srv.Client(t, rep.URL), opts)
		err := r2.Open(ctx)
		if err == nil {
			break
		}
		r2.Close(ctx)
		if !errors.Is(err, writer.ErrReplicaConflict) || time.Now().After(deadline) {
			t.Fatalf("taking over the crashed writer's lease: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer r2.Close(ctx)
	mustSync(t, r2)
	if r2.TXID() != txid+1 {
		t.Fatalf("after the takeover: TXID %s, want %s", r2.TXID(), txid+1)
	}
	checkRestores(t, rep.Client, app, "restore differs from the source after the takeover")
}

// TestS3LeaseExitedWriter: a writer killed with SIGKILL leaves an
// unexpired lease; the writer restarted on the same machine for the same
// database proves its predecessor's process gone and takes the lease over
// at once, says so in its log, and goes on at the next TXID. Another
// writer of the database while the restarted one runs is still refused.
func TestS3LeaseExitedWriter(t *testing.T) { s3test.ForEach(t, testS3LeaseExitedWriter) }

func testS3LeaseExitedWriter(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	rep, app, opts, r1 := syncedS3Writer(t, srv, time.Minute) // lapsing is no way in during this test
	path, txid := r1.Path(), r1.TXID()

	// r1 is killed: its lease object stays, naming a PID that is gone.
	dead := plantExitedLease(t, rep, r1.Path())
	if err := r1.Close(ctx); err != nil { // nothing to sync; its release misses the changed object
		t.Fatal(err)
	}

	insert(t, app, 5)
	var logs bytes.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	r2 := newReplicator(t, path, srv.Client(t, rep.URL), opts)
	defer r2.Close(ctx)
	if err := r2.Open(ctx); err != nil {
		t.Fatalf("restarted writer: %v, want the killed writer's lease taken over at once", err)
	}
	if !strings.Contains(logs.String(), "took over the lease") || !strings.Contains(logs.String(), fmt.Sprintf("pid=%d", dead.PID)) || !strings.Contains(logs.String(), "path="+r1.Path()) {
		t.Fatalf("log %q: want a line naming the killed writer's PID %d and the path", logs.String(), dead.PID)
	}
	mustSync(t, r2)
	if r2.TXID() != txid+1 {
		t.Fatalf("after the takeover: TXID %s, want %s", r2.TXID(), txid+1)
	}

	r3 := newReplicator(t, path, srv.Client(t, rep.URL), opts)
	defer r3.Close(ctx)
	if err := r3.Open(ctx); !errors.Is(err, writer.ErrReplicaConflict) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("a second writer while the restarted one runs: %v, want ErrReplicaConflict naming it", err)
	}
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkRestores(t, rep.Client, app, "restore differs from the source after the takeover")
}

// plantExitedLease rewrites the replica's lease object, held by a writer of
// the database at path in this process, as if that writer had been killed:
// it names a PID that is gone. It returns the holder it names.
func plantExitedLease(t *testing.T, rep *s3test.Replica, path string) lease.Holder {
	t.Helper()
	ctx := context.Background()
	var obj map[string]any
	if err := readLeaseObject(ctx, rep, &obj); err != nil {
		t.Fatal(err)
	}
	holder, _ := obj["holder"].(map[string]any)
	if holder["path"] != path || holder["pid"] != float64(os.Getpid()) {
		t.Fatalf("lease object %v: want a holder with the database's path %s and this PID %d", obj, path, os.Getpid())
	}
	dead := storagetest.ExitedPredecessor(t, lease.ThisProcess("", path))
	holder["pid"] = dead.PID
	b, _ := json.Marshal(obj)
	if _, err := rep.SDK.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(rep.Bucket), Key: leaseKey(rep), Body: bytes.NewReader(b)}); err != nil {
		t.Fatal(err)
	}
	return dead
}

func leaseKey(rep *s3test.Replica) *string {
	return aws.String(rep.Prefix + "/" + ltxs3.LeaseObjectName)
}

// readLeaseObject decodes the replica's lease object into v.
func readLeaseObject(ctx context.Context, rep *s3test.Replica, v any) error {
	out, err := rep.SDK.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(rep.Bucket), Key: leaseKey(rep)})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	return json.NewDecoder(out.Body).Decode(v)
}

// leaseHolderPID reads the PID the replica's lease object names.
func leaseHolderPID(ctx context.Context, rep *s3test.Replica) (int, error) {
	var lease struct {
		Holder struct {
			PID int `json:"pid"`
		} `json:"holder"`
	}
	err := readLeaseObject(ctx, rep, &lease)
	return lease.Holder.PID, err
}

// TestS3LeaseTakeoverWaitsForLateUpload: a writer killed while its last
// upload was on the wire (sent whole, not yet committed, so its position
// file still names the TXID before) must not have that upload land over
// the restarted writer's file for the same TXID. The restarted writer
// waits after a fast takeover before it reads the replica, so the late
// file is there when it picks its next TXID, and nothing is lost.
func TestS3LeaseTakeoverWaitsForLateUpload(t *testing.T) {
	s3test.ForEach(t, testS3LeaseTakeoverWaitsForLateUpload)
}

func testS3LeaseTakeoverWaitsForLateUpload(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	rep, app, opts, r1 := syncedS3Writer(t, srv, time.Minute)
	path, txid := r1.Path(), r1.TXID()
	sidecarAtTXID, err := os.ReadFile(path + writer.SidecarSuffix)
	if err != nil {
		t.Fatal(err)
	}
	insert(t, app, 5)
	mustSync(t, r1) // the upload that will arrive late
	late := storagetest.ReadFile(t, rep.Client, 0, txid+1, txid+1)
	plantExitedLease(t, rep, r1.Path())
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// As the killed writer left things: no answer to its last upload, so its
	// position file names txid, and the server has not committed the file.
	if err := os.WriteFile(path+writer.SidecarSuffix, sidecarAtTXID, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rep.Client.DeleteLTXFiles(ctx, []*ltx.FileInfo{{Level: 0, MinTXID: txid + 1, MaxTXID: txid + 1}}); err != nil {
		t.Fatal(err)
	}
	insert(t, app, 5)

	// The server commits the late upload shortly after the restarted writer
	// took the lease over; the restarted writer must not have read the
	// replica before that.
	var hasLanded atomic.Bool
	landed := make(chan error, 1)
	go func() {
		for {
			pid, err := leaseHolderPID(ctx, rep)
			if err != nil {
				landed <- err
				return
			}
			if pid == os.Getpid() {
				time.Sleep(300 * time.Millisecond) // the server's commit, slow but within the wait
				_, err := rep.Client.WriteLTXFile(ctx, 0, txid+1, txid+1, bytes.NewReader(late))
				hasLanded.Store(err == nil)
				landed <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	probe := &firstListing{Client: srv.Client(t, rep.URL), landed: &hasLanded}
	r2 := newReplicator(t, path, probe, opts)
	defer r2.Close(ctx)
	if err := r2.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-landed; err != nil {
		t.Fatal(err)
	}
	if probe.early.Load() {
		t.Fatal("the restarted writer listed the replica before its predecessor's last upload landed")
	}
	if r2.TXID() != txid+2 {
		t.Fatalf("after the takeover: TXID %s, want %s (after the late file)", r2.TXID(), txid+2)
	}
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkRestores(t, rep.Client, app, "restore differs from the source: the late upload replaced rows the restarted writer had replicated")
}

// firstListing notes whether the first listing through it came before
// *landed was set.
type firstListing struct {
	storage.Client
	landed *atomic.Bool
	once   sync.Once
	early  atomic.Bool
}

func (f *firstListing) Unwrap() storage.Client { return f.Client }

func (f *firstListing) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	f.once.Do(func() { f.early.Store(!f.landed.Load()) })
	return f.Client.LTXFiles(ctx, level, seek, useMetadata)
}
