package vfs

import (
	"context"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/ltxvfs/ltxvfs/index"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// A poll that probes takes in new TXIDs with one request each and no
// listing, and the new rows' pages come with the probed file: reading them
// costs no request.
func TestProbeTakesInNewTXIDs(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`INSERT INTO t(id, v) SELECT value, 'x' FROM generate_series(1, 500)`)
	counting := wrap.NewCounting(src.client)
	name := "probe-" + t.Name()
	if err := Attach(name, Options{Client: counting, Poll: time.Hour}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Detach(name) })
	c := conn(t, openDB(t, "file:"+name+"?vfs=ltx"))
	if got := ints(t, c, `SELECT count(*) FROM t`); got[0] != 500 {
		t.Fatal(got)
	}
	registryMu.Lock()
	r := replicas[attachKey(name)]
	registryMu.Unlock()

	counting.Reset()
	if err := r.probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := counting.Counts(); c.Lists != 0 || c.Opens != 1 {
		t.Fatalf("probe with nothing new: %d lists, %d reads; want 0, 1", c.Lists, c.Opens)
	}

	src.exec(`INSERT INTO t(id, v) VALUES (501, 'new')`)
	src.exec(`INSERT INTO t(id, v) VALUES (502, 'newer')`)
	counting.Reset()
	if err := r.probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := counting.Counts(); c.Lists != 0 || c.Opens != 3 {
		t.Fatalf("probe of two new TXIDs: %d lists, %d reads; want 0, 3 (two files and the miss after them)", c.Lists, c.Opens)
	}
	counting.Reset()
	if got := one[string](t, c, `SELECT group_concat(v) FROM t WHERE id > 500`); got != "new,newer" {
		t.Fatalf("new rows after a probe: %q", got)
	}
	if n := counting.Counts().Requests(); n != 0 {
		t.Fatalf("reading the new rows made %d requests; their pages came with the probed files", n)
	}
}

// The poller follows a writer that commits while a reader reads: every
// commit becomes visible, in order, through probes and listings.
func TestPollerFollowsCommits(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY)`)
	name := "poller-" + t.Name()
	// A listing every few polls, so that both ways of polling take part.
	if err := attachListing(name, Options{Client: src.client, Poll: 2 * time.Millisecond}, 7*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Detach(name) })
	c := conn(t, openDB(t, "file:"+name+"?vfs=ltx"))
	var seen int64
	for i := int64(1); i <= 30; i++ {
		src.exec(`INSERT INTO t(id) VALUES (?)`, i)
		if i%7 == 0 {
			src.compact(1, src.pages.TXID()-5, src.pages.TXID())
		}
		deadline := time.Now().Add(30 * time.Second)
		for seen < i {
			n := ints(t, c, `SELECT count(*) FROM t`)[0]
			if n < seen {
				t.Fatalf("count went back from %d to %d", seen, n)
			}
			seen = n
			if seen < i && time.Now().After(deadline) {
				t.Fatalf("commit %d not visible after 30s (count %d)", i, seen)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// attachListing is Attach with the poller listing every level once the last
// listing is listGap old (0: the default).
func attachListing(name string, opts Options, listGap time.Duration) error {
	if err := Attach(name, opts); err != nil {
		return err
	}
	registryMu.Lock()
	replicas[attachKey(name)].listGap = listGap
	registryMu.Unlock()
	return nil
}

// Versions that no transaction holds are collected, however many polls and
// transactions made and used them.
func TestManyPollsLeaveNoVersions(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY)`)
	name := "versions-" + t.Name()
	if err := Attach(name, Options{Client: src.client, Poll: time.Hour}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Detach(name) })
	c := conn(t, openDB(t, "file:"+name+"?vfs=ltx"))
	registryMu.Lock()
	r := replicas[attachKey(name)]
	registryMu.Unlock()
	var made []weak.Pointer[index.Version]
	for i := range 60 {
		src.exec(`INSERT INTO t(id) VALUES (?)`, i)
		if i%10 == 9 {
			src.compact(1, src.pages.TXID()-8, src.pages.TXID())
			pollNow(t, attachKey(name))
		} else if err := r.probe(context.Background()); err != nil {
			t.Fatal(err)
		}
		made = append(made, weak.Make(r.idx.Latest()))
		if got := ints(t, c, `SELECT count(*) FROM t`); got[0] != int64(i+1) {
			t.Fatalf("count %d after %d inserts", got[0], i+1)
		}
	}
	runtime.GC()
	runtime.GC()
	alive := 0
	for _, w := range made {
		if w.Value() != nil {
			alive++
		}
	}
	if alive > 1 {
		t.Fatalf("%d of %d versions alive after the polls, want only the latest", alive, len(made))
	}
}
