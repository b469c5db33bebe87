package index

import (
	"context"
	"testing"
	"weak"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// changedPages returns the pages whose entry differs between two versions
// (present in one only, or read from another place).
func changedPages(a, b *Version) []uint32 {
	var out []uint32
	for pgno := uint32(1); pgno <= max(a.Commit(), b.Commit()); pgno++ {
		ea, oka := a.Lookup(pgno)
		eb, okb := b.Lookup(pgno)
		if oka != okb || ea != eb {
			out = append(out, pgno)
		}
	}
	return out
}

// TestSnapshotKeepsUnchangedPages: a snapshot at the newest TXID makes the
// plan start again from it; the pages the L0 files since the last version
// did not touch keep their entries (and their place in a page cache), the
// others come from the new plan; and without those L0 files nothing can
// be known, so every page comes from the snapshot.
func TestSnapshotKeepsUnchangedPages(t *testing.T) {
	for _, withL0 := range []bool{true, false} {
		r := newTestReplica(t)
		x := New(r.client, Options{})
		r.grow(700) // two chunks
		for range 5 {
			r.apply(700, 1, 20, 650)
		}
		v := mustUpdate(t, x) // TXID 6
		r.apply(700, 1, 7)    // 7
		r.apply(700, 1, 600)  // 8
		r.snapshot()          // L9 [1,8]: the plan is the snapshot alone
		if !withL0 {
			r.remove(0, 7, 7)
			r.remove(0, 8, 8)
		}
		nv := mustUpdate(t, x)
		r.check(nv)
		if len(nv.plan) != 1 || nv.plan[0].Info.Level != storage.SnapshotLevel {
			t.Fatalf("plan %v, want the snapshot alone", nv.plan)
		}
		changed := changedPages(v, nv)
		if withL0 {
			if len(changed) != 3 || changed[0] != 1 || changed[1] != 7 || changed[2] != 600 {
				t.Fatalf("with the L0 files: pages %v changed entries, want exactly 1, 7 and 600, which they wrote", changed)
			}
		} else if len(changed) != 700 {
			t.Fatalf("without the L0 files: %d pages changed entries, want all 700 (nothing tells which pages stayed)", len(changed))
		}
	}
}

// TestReplanKeepsListedEntries: retention removes some of the L0 files the
// latest version reads from; Replan rebuilds the same TXID, keeps every
// entry whose file is still there and moves only the others, each move
// reported.
func TestReplanKeepsListedEntries(t *testing.T) {
	r := newTestReplica(t)
	var moves []Move
	x := New(r.client, Options{Moved: func(m []Move) { moves = append(moves, m...) }})
	r.grow(40)
	for i := range 9 {
		r.apply(40, uint32(2+i), uint32(20+i)) // 2..10: pages 2-10 and 20-28
	}
	v := mustUpdate(t, x)
	r.compact(1, 2, 10)
	if nv := mustUpdate(t, x); !sameLookups(nv, lookups(v)) {
		t.Fatal("the late L1 moved pages whose L0 files are there")
	}
	v = x.Latest()
	for txid := ltx.TXID(2); txid <= 5; txid++ {
		r.remove(0, txid, txid)
	}
	nv, err := x.Replan(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	r.check(nv)
	for pgno := uint32(1); pgno <= 40; pgno++ {
		was, _ := v.Lookup(pgno)
		now, _ := nv.Lookup(pgno)
		gone := was.File.Info.Level == 0 && was.File.Info.MinTXID >= 2 && was.File.Info.MaxTXID <= 5
		if !gone && now != was {
			t.Errorf("page %d moved from %s to %s, though %s is still there", pgno, was.File.Name(), now.File.Name(), was.File.Name())
		}
		if gone && now.File.Info.Level != 1 {
			t.Errorf("page %d, whose file retention removed, comes from %s, want the L1", pgno, now.File.Name())
		}
	}
	if len(moves) != 8 {
		t.Fatalf("%d moves reported, want 8 (pages 2-5 and 20-23)", len(moves))
	}
	if x.Latest() != nv {
		t.Fatal("Latest still reads from the removed files")
	}
}

// TestAtReadsLatestFiles: a version built for an older TXID reads the pages
// that did not change since a file both plans share from the files the
// latest version reads them from.
func TestAtReadsLatestFiles(t *testing.T) {
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(30)
	for i := range 9 {
		r.apply(30, uint32(2+i)) // 2..10
	}
	for range 5 {
		r.apply(30, 1) // 11..15
	}
	mustUpdate(t, x)
	r.compact(1, 2, 10)
	latest := mustUpdate(t, x) // its pages 2-10 still in L0 files
	old, err := New(r.client, Options{}).At(context.Background(), 12)
	if err != nil {
		t.Fatal(err)
	}
	e5, _ := old.Lookup(5)
	if e5.File.Info.Level != 1 {
		t.Fatalf("a fresh index reads page 5 at TXID 12 from %s, want the L1 (the test needs it)", e5.File.Name())
	}
	at, err := x.At(context.Background(), 12)
	if err != nil {
		t.Fatal(err)
	}
	r.check(at)
	for pgno := uint32(2); pgno <= 10; pgno++ {
		want, _ := latest.Lookup(pgno)
		if got, _ := at.Lookup(pgno); got != want {
			t.Errorf("At(12) reads page %d from %s, want %s as the latest version does", pgno, got.File.Name(), want.File.Name())
		}
	}
}

// TestManyPollsLeaveNoVersions: versions that nothing holds are collected,
// however many polls made them.
func TestManyPollsLeaveNoVersions(t *testing.T) {
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(100)
	mustUpdate(t, x)
	var made []weak.Pointer[Version]
	for i := range 60 {
		r.apply(100, 1, uint32(i*7%100)+1)
		var v *Version
		if i%3 == 0 {
			v = mustUpdate(t, x)
		} else {
			var found bool
			var err error
			if v, found, err = x.Probe(context.Background()); err != nil || !found {
				t.Fatalf("probe: %v, %v", found, err)
			}
		}
		if i%20 == 19 {
			r.compact(1, v.TXID()-5, v.TXID())
		}
		made = append(made, weak.Make(v))
	}
	pinned, err := x.At(context.Background(), 30) // held below
	if err != nil {
		t.Fatal(err)
	}
	heapInUse() // two GCs
	alive := 0
	for _, w := range made {
		if w.Value() != nil {
			alive++
		}
	}
	if alive > 1 {
		t.Fatalf("%d of %d versions alive; want only the latest", alive, len(made))
	}
	r.check(pinned)
}

func TestBridgeInfos(t *testing.T) {
	f := func(level int, min, max ltx.TXID) *ltx.FileInfo {
		return &ltx.FileInfo{Level: level, MinTXID: min, MaxTXID: max}
	}
	infos := []*ltx.FileInfo{
		f(9, 1, 20), // a snapshot: never part of a bridge
		f(0, 11, 11), f(0, 12, 12), f(0, 13, 13), f(0, 14, 14), f(0, 15, 15),
		f(1, 11, 14), // reaches further, but 15.. must follow
		f(1, 12, 15), // starts inside: only after 11
		f(0, 17, 17), // 16 is missing
	}
	names := func(chain []*ltx.FileInfo) []string {
		var out []string
		for _, c := range chain {
			out = append(out, storage.FileName(c.Level, c.MinTXID, c.MaxTXID))
		}
		return out
	}
	for _, tt := range []struct {
		from, to ltx.TXID
		want     int // files, 0: none
	}{
		{10, 15, 2}, // L1 11-14 + L0 15, or L0 11 + L1 12-15
		{10, 14, 1},
		{11, 15, 1},
		{10, 17, 0}, // 16 missing
		{15, 15, 0},
		{9, 15, 0}, // 10 missing
	} {
		got := bridgeInfos(infos, tt.from, tt.to)
		if len(got) != tt.want {
			t.Errorf("bridge %d..%d: %v, want %d files", tt.from, tt.to, names(got), tt.want)
			continue
		}
		next := tt.from + 1
		for _, c := range got {
			if c.MinTXID != next || c.MaxTXID > tt.to {
				t.Errorf("bridge %d..%d: %v does not lead from one to the other", tt.from, tt.to, names(got))
			}
			next = c.MaxTXID + 1
		}
		if tt.want > 0 && next != tt.to+1 {
			t.Errorf("bridge %d..%d: %v stops short", tt.from, tt.to, names(got))
		}
	}
}
