package writer_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/writer"
)

func TestReplicateAndRestore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	r := newReplicator(t, path, c, testOpts())
	defer r.Close(ctx)

	insert(t, app, 10)
	mustSync(t, r)
	if r.TXID() != 1 {
		t.Fatalf("first sync: TXID %s, want 1", r.TXID())
	}
	want1 := dump(t, app)

	insert(t, app, 100)
	execSQL(t, app, `UPDATE t SET n = n * 2 WHERE id % 3 = 0`)
	mustSync(t, r)
	want2 := dump(t, app)
	mustSync(t, r) // nothing new: no TXID
	if r.TXID() != 2 {
		t.Fatalf("TXID %s after two syncs with changes and one without, want 2", r.TXID())
	}
	checkContiguous(t, c, 1)

	got, res := restoreDump(t, c, restore.Options{})
	if got != want2 || res.TXID != 2 {
		t.Fatalf("restore latest: TXID %s, content differs from the source", res.TXID)
	}
	got, _ = restoreDump(t, c, restore.Options{TXID: 1})
	if got != want1 {
		t.Fatalf("restore TXID 1 differs from the source at TXID 1")
	}
	if r.Pos().PostApplyChecksum == 0 || r.Pos().TXID != ltx.TXID(2) {
		t.Fatalf("Pos = %v", r.Pos())
	}
}

// TestShrinkAndGrow: VACUUM shrinks the database (pages above the new size
// must not come back in a restore) and it grows again.
func TestShrinkAndGrow(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	r := newReplicator(t, path, c, testOpts())
	defer r.Close(ctx)
	pages := func() int64 {
		var n int64
		if err := app.QueryRow(`PRAGMA page_count`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	check := func(what string) {
		t.Helper()
		got, res := restoreDump(t, c, restore.Options{})
		if got != dump(t, app) {
			t.Fatalf("%s: restore differs from the source", what)
		}
		if int64(res.Pages) != pages() {
			t.Fatalf("%s: restored %d pages, the source has %d", what, res.Pages, pages())
		}
	}
	insert(t, app, 3000)
	mustSync(t, r)
	big := pages()
	execSQL(t, app, `DELETE FROM t WHERE id > 100`)
	execSQL(t, app, `VACUUM`)
	mustSync(t, r)
	if pages() >= big {
		t.Fatalf("VACUUM did not shrink the database (%d pages, was %d)", pages(), big)
	}
	check("after VACUUM")
	insert(t, app, 2000)
	mustSync(t, r)
	check("after growing again")
	if err := r.Checkpoint(ctx, writer.CheckpointTruncate); err != nil {
		t.Fatal(err)
	}
	execSQL(t, app, `DELETE FROM t WHERE id % 2 = 0`)
	execSQL(t, app, `VACUUM`)
	mustSync(t, r)
	check("after a truncating checkpoint and VACUUM")
	checkContiguous(t, c, 1)
}
