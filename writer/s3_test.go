package writer_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/writer"
)

// TestS3 replicates into a real S3 server (versitygw on loopback): L0
// files, a compaction and a snapshot are written, a second writer is
// caught by the file it finds at its next TXID (S3 grants no lease here),
// and the replica restores at the newest TXID and by time, through the
// object metadata timestamps.
func TestS3(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Shared(t)
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
	if got, _ := restoreDump(t, rep.Client, writer.RestoreOptions{}); got != dump(t, app) {
		t.Fatal("restore from S3 differs from the source")
	}
	for _, rec := range recs {
		if got, _ := restoreDump(t, rep.Client, writer.RestoreOptions{Time: rec.at}); got != rec.dump {
			t.Fatalf("restore from S3 at the time of TXID %s differs from the source then", rec.txid)
		}
	}

	// Another database's writer on the same replica: the first one stops.
	other := filepath.Join(t.TempDir(), "other.db")
	insert(t, openApp(t, other), 3)
	r2 := newReplicator(t, other, srv.Client(t, rep.URL), testOpts())
	defer r2.Close(ctx)
	mustSync(t, r2)
	insert(t, app, 1)
	if err := r.Sync(ctx); !errors.Is(err, writer.ErrReplicaConflict) {
		t.Fatalf("first writer after a second wrote to S3: got %v, want ErrReplicaConflict", err)
	}
}
