package writer_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// litestreamRestore restores the newest TXID as Litestream v0.5 does: the
// plan's files through a Compactor with checksums off, decoded into a
// database image.
func litestreamRestore(t *testing.T, c storage.Client) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	all, err := storage.ListAll(ctx, c, true)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := plan.Restore(all, 0)
	if err != nil {
		t.Fatal(err)
	}
	var rdrs []io.Reader
	for _, f := range plan {
		rdrs = append(rdrs, bytes.NewReader(storagetest.ReadFile(t, c, f.Level, f.MinTXID, f.MaxTXID)))
	}
	var merged, img bytes.Buffer
	cmp, err := ltx.NewCompactor(&merged, rdrs)
	if err != nil {
		t.Fatal(err)
	}
	cmp.HeaderFlags = ltx.HeaderFlagNoChecksum
	if err := cmp.Compact(ctx); err != nil {
		return nil, err
	}
	if err := ltx.NewDecoder(&merged).DecodeDatabaseTo(&img); err != nil {
		return nil, err
	}
	return img.Bytes(), nil
}

// TestDefaultReplicaRestoresAsLitestream: by default (no checksums) the
// replica restores the way Litestream v0.5 restores (which refuses files
// that carry a checksum), and through Restore; a replica written partly
// with Checksums and partly without compacts and restores too. The
// replica holds hints and a manifest beside the LTX files, where
// Litestream never looks.
func TestDefaultReplicaRestoresAsLitestream(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	fill(t, app, 3000) // the first file and the snapshot get hints

	// Written with checksums first: Litestream's restore refuses it.
	withChecksums := testOpts()
	withChecksums.Checksums = true
	r1 := newReplicator(t, path, c, withChecksums)
	insert(t, app, 50)
	mustSync(t, r1)
	insert(t, app, 5)
	mustSync(t, r1)
	if _, err := litestreamRestore(t, c); err == nil {
		t.Fatal("Litestream's restore accepted files with checksums; the default could carry them")
	}
	if _, err := r1.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	insert(t, app, 5)
	mustSync(t, r1)
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}

	r2 := newReplicator(t, path, c, testOpts())
	defer r2.Close(ctx)
	for i := 0; i < 3; i++ {
		insert(t, app, 20)
		mustSync(t, r2)
	}
	// Compactions run in runs of one kind; the snapshot holds no checksum.
	for {
		info, err := r2.Compact(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if info == nil {
			break
		}
	}
	if _, err := r2.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	insert(t, app, 3)
	mustSync(t, r2)
	checkContiguous(t, c, 1)
	if len(hintNames(t, c)) < 2 {
		t.Fatalf("hints %v: the replica should hold those of the first file and the snapshot", hintNames(t, c))
	}
	checkManifest(t, c)

	img, err := litestreamRestore(t, c)
	if err != nil {
		t.Fatalf("Litestream-style restore of a default replica: %v", err)
	}
	out := filepath.Join(dir, "litestream.db")
	if err := writeFile(out, img); err != nil {
		t.Fatal(err)
	}
	if dumpFile(t, out) != dump(t, app) {
		t.Fatal("Litestream-style restore differs from the source")
	}
	if got, _ := restoreDump(t, c, restore.Options{}); got != dump(t, app) {
		t.Fatal("Restore differs from the source")
	}
	if l1 := listLevel(t, c, 1); len(l1) != 3 {
		t.Fatalf("%d L1 files, want 3: the first, then the rest of the run with checksums and the run without apart", len(l1))
	}
}
