package index

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReplicaBegunAgain: a replica whose files were lost and written anew
// by a writer that began it again (its manifest names another history)
// reuses TXIDs for other commits. A follower then reads the new history
// afresh, never a page of the old one for a TXID of the new; a version
// of the old history cannot be built again (Replan) and says why.
func TestReplicaBegunAgain(t *testing.T) {
	ctx := context.Background()
	r := newTestReplica(t)
	r.grow(8)
	r.apply(8, 2)
	r.apply(8, 3)
	r.apply(8, 4)
	m := r.publish(1)
	m.History = "aaaaaaaaaaaaaaaa"
	r.putManifest(m)
	x := New(r.client, Options{})
	r.check(mustUpdate(t, x))
	old, err := x.At(ctx, 3) // a connection pinned at TXID 3
	if err != nil {
		t.Fatal(err)
	}
	r.check(old)

	// The new history: other pages, committed an hour later, not as far
	// yet (TXID 3).
	again := newTestReplica(t)
	again.epoch = r.epoch.Add(time.Hour)
	again.grow(8)
	again.apply(8, 5)
	again.apply(8, 6)
	m = again.publish(1)
	m.History = "bbbbbbbbbbbbbbbb"
	again.putManifest(m)
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(r.dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(r.dir, os.DirFS(again.dir)); err != nil {
		t.Fatal(err)
	}

	v := mustUpdate(t, x)
	if v.TXID() != 3 {
		t.Fatalf("after the replica was begun again: TXID %d, want the new history's 3", v.TXID())
	}
	again.check(v) // every page of the new history's TXID 3, none of the old
	if v.Seq() == old.Seq() {
		t.Fatal("the new history's version has the old one's Seq")
	}

	if _, err := x.Replan(ctx, old); !errors.Is(err, ErrHistoryChanged) {
		t.Fatalf("Replan of the old history's TXID 3: %v, want ErrHistoryChanged", err)
	}
}
