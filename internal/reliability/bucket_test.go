package reliability

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/writer"
)

// TestBucketDisappears empties and deletes the bucket of a replica while
// a writer replicates into it under load (a sync every 50 ms) and a VFS
// reader follows it, then creates the bucket again.
//
// While the bucket is gone, the writer goes on retrying and says why in
// its log (the bucket, by name, does not exist) and in its lag, which
// grows; nothing is fatal yet, since a bucket can come back (a server
// restarted without a volume, a bucket deleted by mistake and recreated).
// A reader that opens the replica meanwhile gets an error naming the
// bucket within its query's context; the following reader reads rows the
// source had, or an error, never other rows.
//
// Once the bucket is back, it is empty: the replica's history (every TXID
// up to the writer's) is gone, and writing the next TXID into it would
// make a replica that restores to nothing. The writer stops instead, with
// an error (Err) that says the replica lost its files and what to do:
// restart the writer, which begins the replica again with a snapshot of
// the database. The test does that, and a restore holds every
// transaction the source committed: the database and its WAL kept them
// all. A reader that opens the new replica reads the source's rows.
func TestBucketDisappears(t *testing.T) { s3test.ForEach(t, testBucketDisappears) }

func testBucketDisappears(t *testing.T, srv *s3test.Server) {
	seed := testSeed(t)
	ctx := context.Background()
	bucket := srv.NewBucket(t)
	replicaURL := srv.URL(bucket, "db")
	sdk := srv.SDK(t)

	run := startBadRun(t, seed, srv.Client(t, replicaURL), srv.Client(t, replicaURL), fmt.Sprintf("bucket-follow-%s-%d.db", srv.Kind, seed))
	path, m, load, logs, reg, r, follower := run.path, run.m, run.load, run.logs, run.reg, run.r, run.follower
	before := r.TXID()

	deleteBucket(t, srv, bucket)
	gone := time.Now()
	// The writer retries, saying the bucket is missing (it went at once),
	// or stops with ErrReplicaLost at once (it saw the replica half
	// emptied first: MinIO's force delete removes the objects before the
	// bucket).
	var line string
	for line == "" && !errors.Is(r.Err(), writer.ErrReplicaLost) {
		if time.Since(gone) > 10*time.Second {
			t.Fatalf("10 s after the bucket was deleted the writer neither says it is missing nor stopped (Err %v); the log:\n%s", r.Err(), tail(logs.String(), 4000))
		}
		for _, l := range strings.Split(logs.String(), "\n") {
			if containsAll(l, "sync failed", "bucket", bucket, "does not exist") {
				line = l
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if line == "" {
		t.Logf("the writer saw the replica emptied before its bucket went: %v", r.Err())
	} else {
		t.Logf("the writer's log while the bucket is gone: %s", truncate(line, 600))
		for lag := 0.0; lag < 0.5; lag = gaugeValue(t, reg, "ltx_writer_replica_lag_seconds") {
			if time.Since(gone) > 10*time.Second {
				t.Fatalf("10 s after the bucket was deleted, ltx_writer_replica_lag_seconds is %v", lag)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := r.Err(); err != nil {
			t.Fatalf("the writer stopped while the bucket was gone (it may come back): %v", err)
		}
	}

	// A reader that opens the replica now, and the following one.
	fresh := attachReader(t, fmt.Sprintf("bucket-fresh-%s-%d.db", srv.Kind, seed), srv.Client(t, replicaURL))
	o := readWithin(t, fresh, m, time.Second)
	// It names the bucket, and says that it does not exist (or, where the
	// writer saw it half emptied, that the replica restores to nothing).
	if o.err == nil || !containsAll(o.err.Error(), bucket) || line != "" && !strings.Contains(o.err.Error(), "does not exist") {
		t.Fatalf("a reader opening the replica while its bucket is gone: %s, want an error naming the bucket", shown(o.err))
	}
	if o.took > time.Second+lateSlack {
		t.Errorf("a read under a 1 s context returned after %v", o.took.Round(time.Millisecond))
	}
	t.Logf("a reader opening the replica meanwhile: %s after %v", shown(o.err), o.took.Round(time.Millisecond))
	var followed []string
	for range 3 {
		o := readWithin(t, follower, m, time.Second)
		if o.err != nil && !containsAll(o.err.Error(), bucket) {
			t.Errorf("the following reader failed without naming the bucket: %v", o.err)
		}
		followed = append(followed, fmt.Sprintf("TXID %s (transaction %d): %s", o.txid, o.k, shown(o.err)))
	}
	t.Logf("the following reader meanwhile: %s", strings.Join(followed, "; "))

	// The bucket comes back, empty. (MinIO may still answer that it
	// exists for a moment after a forced delete: try again.)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, err := sdk.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)})
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "BucketAlreadyOwnedByYou") || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	select {
	case <-r.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("20 s after the bucket came back empty the writer still runs (TXID %s, lag %v)", r.TXID(), r.Lag())
	}
	stopped := r.Err()
	if stopped == nil || !errors.Is(stopped, writer.ErrReplicaLost) ||
		!containsAll(stopped.Error(), "s3://"+bucket+"/db", "restart") {
		t.Fatalf("the writer stopped with %s, want writer.ErrReplicaLost naming the replica and saying to restart", shown(stopped))
	}
	t.Logf("the writer stopped: %s", stopped)
	if files := listedFiles(t, srv.Client(t, replicaURL)); files != "" {
		t.Fatalf("the writer wrote into the emptied replica: %s", files)
	}
	closeWithin(r, 5*time.Second)

	// The operator restarts the writer: a snapshot begins the replica again.
	r2, err := writer.New(path, srv.Client(t, replicaURL), badInputOpts(logs))
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer closeWithin(r2, 5*time.Second)
	waitSynced(t, r2, 0)
	restoreEqualsSource(t, load, m, r2, srv.Client(t, replicaURL))
	if o := readWithin(t, attachReader(t, fmt.Sprintf("bucket-after-%s-%d.db", srv.Kind, seed), srv.Client(t, replicaURL)), m, 5*time.Second); o.err != nil || o.k != m.committed() {
		t.Fatalf("a reader of the new replica reads transaction %d of %d: %v", o.k, m.committed(), o.err)
	}
	t.Logf("the replica was at TXID %s when its bucket was deleted; after the restart it is at TXID %s, all %d transactions",
		before, r2.TXID(), m.committed())

	// The reader that followed throughout saw the replica's history
	// replaced under the same TXIDs (the manifest names another history):
	// it never reads a page of the old one for a TXID of the new (rows
	// the source never had, or SQLite's "malformed"), and follows the new
	// history to the source's last transaction.
	var last readOutcome
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		last = readWithin(t, follower, m, 5*time.Second) // wrong rows fail the test there
		if last.err != nil && strings.Contains(last.err.Error(), "malformed") {
			t.Fatalf("the reader that followed the replica across its restart, at TXID %s: %v", last.txid, last.err)
		}
		if last.err == nil && last.k == m.committed() || time.Now().After(deadline) {
			break
		}
	}
	if last.err != nil || last.k != m.committed() {
		t.Fatalf("the reader that followed the replica across its restart reads transaction %d of %d: %s", last.k, m.committed(), shown(last.err))
	}
	t.Logf("the reader that followed throughout reads TXID %s, the source's last transaction", last.txid)
}

// deleteBucket makes the bucket disappear at once, with everything in it,
// as a bucket deleted by force (or lost by the server) does, while the
// writer goes on writing into it: versitygw keeps a bucket as a directory,
// moved away here; MinIO deletes a bucket with its objects when asked with
// x-minio-force-delete. (Emptying it object by object first would let the
// writer see its replica emptied before the bucket goes, which it also
// reports, as lost: see writer.ErrReplicaLost.)
func deleteBucket(t *testing.T, srv *s3test.Server, bucket string) {
	t.Helper()
	ctx := context.Background()
	sdk := srv.SDK(t)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		if srv.Kind == s3test.MinIO {
			_, err = sdk.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String(bucket)}, func(o *awss3.Options) {
				o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue("x-minio-force-delete", "true"))
			})
		} else {
			// Renamed away first: at once, where removing the files one
			// by one would show the writer a bucket half emptied.
			gone := filepath.Join(t.TempDir(), bucket)
			if err = os.Rename(srv.BucketDir(bucket), gone); err == nil {
				err = os.RemoveAll(gone)
			}
		}
		if err != nil {
			t.Logf("delete bucket %s: %v", bucket, err)
			continue
		}
		if _, err := sdk.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil && strings.Contains(err.Error(), "404") {
			return
		}
	}
	t.Fatalf("bucket %s still there after 20 s", bucket)
}

// listedFiles names the LTX files of a replica, "" if none.
func listedFiles(t *testing.T, c storage.Client) string {
	t.Helper()
	var names []string
	for level := 0; level <= storage.SnapshotLevel; level++ {
		infos, err := storage.ListLevel(context.Background(), c, level, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			names = append(names, storage.FileName(level, info.MinTXID, info.MaxTXID))
		}
	}
	return strings.Join(names, ", ")
}
