package index

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
)

// frameLog is a FrameSink that decodes and remembers what it is given.
type frameLog struct {
	mu    sync.Mutex
	pages map[string]map[uint32][]byte // by file name
}

func (l *frameLog) sink(tb testing.TB) FrameSink {
	l.pages = map[string]map[uint32][]byte{}
	return func(f *File, frames []Frame) {
		l.mu.Lock()
		defer l.mu.Unlock()
		m := l.pages[f.Name()]
		if m == nil {
			m = map[uint32][]byte{}
			l.pages[f.Name()] = m
		}
		for _, fr := range frames {
			hdr, data, err := ltx.DecodePageData(fr.Data)
			if err != nil || hdr.Pgno != fr.Pgno {
				tb.Errorf("frame of page %d of %s: page %d, %v", fr.Pgno, f.Name(), hdr.Pgno, err)
				continue
			}
			if _, dup := m[fr.Pgno]; dup {
				tb.Errorf("page %d of %s given twice", fr.Pgno, f.Name())
			}
			m[fr.Pgno] = bytes.Clone(data)
		}
	}
}

func (l *frameLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.pages {
		n += len(m)
	}
	return n
}

// checkFrames: every page handed over is the page v serves from that file,
// with the bytes of v's TXID.
func (l *frameLog) check(tb testing.TB, r *testReplica, v *Version) {
	tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, m := range l.pages {
		for pgno, data := range m {
			e, ok := v.Lookup(pgno)
			if !ok || e.File.Name() != name {
				tb.Fatalf("page %d of %s handed over, but the version reads it from %v", pgno, name, e.File)
			}
			if want := r.images[v.TXID()][pgno]; !bytes.Equal(data, want) {
				tb.Fatalf("page %d of %s: wrong bytes", pgno, name)
			}
		}
	}
}

// TestFramesOfSmallFiles: the frames of files read whole reach the sink,
// for the pages the version serves from them only, with no more requests.
func TestFramesOfSmallFiles(t *testing.T) {
	r := newTestReplica(t)
	r.grow(30)
	r.apply(30, 2, 3, 4)
	r.apply(30, 3, 5) // page 3 again: only this file's page 3 is current
	r.apply(20)       // a shrink: pages above 20 are gone
	var l frameLog
	x := New(r.client, Options{Frames: l.sink(t), HintFrameBytes: 0})
	r.client.Reset()
	v := mustUpdate(t, x)
	r.check(v)
	l.check(t, r, v)
	if n := l.count(); n != 20 {
		t.Fatalf("%d pages handed over, want all 20 of the database", n)
	}
	if c := r.client.Counts(); c.Opens != 4 {
		t.Fatalf("%d reads for 4 small files", c.Opens)
	}
	// A poll hands over the new file's pages, once.
	r.apply(20, 7, 8)
	l.pages = map[string]map[uint32][]byte{}
	v = mustUpdate(t, x)
	l.check(t, r, v)
	if n := l.count(); n != 2 {
		t.Fatalf("a poll with one new file of 2 pages handed over %d pages", n)
	}
	mustUpdate(t, x)
	if n := l.count(); n != 2 {
		t.Fatalf("a poll with nothing new handed over %d more pages", n-2)
	}
}

// TestFramesOfALargeFile: the first frames of a file larger than the tail
// read come with its page index: the head read, in the same round.
func TestFramesOfALargeFile(t *testing.T) {
	headAndTail(t)
	r := newTestReplica(t)
	r.grow(4000) // a snapshot of ~100 KB
	if n := len(r.l0[1]); n <= tailGuess {
		t.Fatalf("the file is %d bytes, not over the tail guess", n)
	}
	r.apply(4000, 1, 3000)
	var l frameLog
	x := New(r.client, Options{Frames: l.sink(t), HintFrameBytes: 0})
	r.client.Reset()
	v := mustUpdate(t, x)
	l.check(t, r, v)
	if c := r.client.Counts(); c.Opens != 3 {
		t.Fatalf("%d reads, want a head and a tail read of the snapshot and one read of the L0 file", c.Opens)
	}
	snap := l.pages[storage.FileName(0, 1, 1)]
	if len(snap) < 100 || snap[1] != nil || snap[2] == nil {
		t.Fatalf("the snapshot's head gave %d pages (page 1: %v, page 2: %v); want page 2 on and not page 1, rewritten later", len(snap), snap[1] != nil, snap[2] != nil)
	}
	if m := l.pages[storage.FileName(0, 2, 2)]; len(m) != 2 {
		t.Fatalf("the L0 file gave %d pages, want 2", len(m))
	}
}

// hintOf writes the hint of the file at level [min,max], as the writer
// does, with copies of the frames of pgnos (instead of the writer's
// choice: the test's pages are not B-tree pages), and returns its bytes.
func (r *testReplica) hintOf(level int, min, max ltx.TXID, pgnos ...uint32) []byte {
	r.tb.Helper()
	rc, err := r.store.OpenLTXFile(context.Background(), level, min, max, 0, 0)
	if err != nil {
		r.tb.Fatal(err)
	}
	file, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		r.tb.Fatal(err)
	}
	h, err := manifest.BuildHint(level, bytes.NewReader(file))
	if err != nil {
		r.tb.Fatal(err)
	}
	h.Frames = nil
	off := int64(ltx.HeaderSize)
	for i, pgno := range h.Pgnos {
		if slices.Contains(pgnos, pgno) {
			h.Frames = append(h.Frames, manifest.Frame{Ordinal: uint32(i), Data: file[off : off+int64(h.Sizes[i])]})
		}
		off += int64(h.Sizes[i])
	}
	b := h.Encode()
	r.putHint(manifest.HintName(h.Source()), b)
	return b
}

// putHint stores a hint object as is.
func (r *testReplica) putHint(name string, b []byte) {
	r.tb.Helper()
	if _, err := r.store.WriteObject(context.Background(), name, bytes.NewReader(b), storage.WriteOptions{}); err != nil {
		r.tb.Fatal(err)
	}
}

// TestHints: the hint of a snapshot is listed with the levels and read in
// the same round as the page indexes; its frames reach the sink where the
// version serves them from the snapshot, and its frame sums check the
// snapshot's frames.
func TestHints(t *testing.T) {
	headAndTail(t)
	r := newTestReplica(t)
	r.grow(4000)
	r.apply(4000, 2000)
	r.snapshot() // [1,2]
	r.apply(4000, 3000, 3001)
	r.hintOf(storage.SnapshotLevel, 1, 2, 1500, 2000, 3000, 3999)

	var l frameLog
	x := New(r.client, Options{Frames: l.sink(t), HintFrameBytes: 1 << 20})
	r.client.Reset()
	v := mustUpdate(t, x)
	l.check(t, r, v)
	if c := r.client.Counts(); c.Lists != 1 || c.ObjectLists != 1 || c.Opens != 3 || c.ObjectReads != 2 {
		t.Fatalf("%+v; want a look for a manifest, the levels (in one listing) and the hints listed, a head and tail read of the snapshot, its hint, and a read of the L0 file", c)
	}
	snap := l.pages[storage.FileName(storage.SnapshotLevel, 1, 2)]
	for _, pgno := range []uint32{1500, 2000, 3999} {
		if snap[pgno] == nil {
			t.Fatalf("hinted page %d not handed over", pgno)
		}
	}
	if snap[3000] != nil {
		t.Fatal("hinted page 3000, rewritten by a later file, handed over")
	}
	e, _ := v.Lookup(1500)
	if !e.File.Verified() {
		t.Fatal("the snapshot's frames are not checked against its hint")
	}

	// A poll lists the hints again: a new snapshot's hint is read.
	r.apply(4000, 10, 2500)
	r.snapshot() // [1,4]
	r.hintOf(storage.SnapshotLevel, 1, 4, 2500)
	r.client.Reset()
	l.pages = map[string]map[uint32][]byte{}
	v = mustUpdate(t, x)
	l.check(t, r, v)
	if v.TXID() != 4 || l.pages[storage.FileName(storage.SnapshotLevel, 1, 4)][2500] == nil {
		t.Fatalf("the new snapshot's hint was not read (TXID %d)", v.TXID())
	}
}

// TestBadHints: a hint that does not decode is dropped, and the version is
// built as without it; one that decodes but describes another content
// under the file's name means the file is damaged.
func TestBadHints(t *testing.T) {
	for _, tt := range []struct {
		name    string
		damage  func(r *testReplica, name string, hint []byte)
		damaged bool
	}{
		{"flipped byte", func(r *testReplica, name string, hint []byte) {
			b := bytes.Clone(hint)
			b[len(b)/2] ^= 1
			r.putHint(name, b)
		}, false},
		{"truncated", func(r *testReplica, name string, hint []byte) { r.putHint(name, hint[:len(hint)-20]) }, false},
		{"not a hint", func(r *testReplica, name string, hint []byte) { r.putHint(name, bytes.Repeat([]byte("x"), 300)) }, false},
		{"of another content", func(r *testReplica, name string, hint []byte) {
			h, err := manifest.DecodeHint(hint)
			if err != nil {
				t.Fatal(err)
			}
			h.Sizes[3], h.Sizes[4] = h.Sizes[3]+1, h.Sizes[4]-1
			r.putHint(name, h.Encode())
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestReplica(t)
			r.grow(4000)
			r.apply(4000, 2000)
			r.snapshot()
			hint := r.hintOf(storage.SnapshotLevel, 1, 2, 1500, 2000)
			h, err := manifest.DecodeHint(hint)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(r, manifest.HintName(h.Source()), hint)
			var l frameLog
			x := New(r.client, Options{Frames: l.sink(t), HintFrameBytes: 1 << 20})
			v, err := x.Update(context.Background())
			if tt.damaged {
				if err == nil || !errors.Is(err, ltx.ErrChecksumMismatch) || !strings.Contains(err.Error(), storage.FileName(storage.SnapshotLevel, 1, 2)) {
					t.Fatalf("got %v, want an error saying the snapshot is damaged", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.check(t, r, v)
			snap := l.pages[storage.FileName(storage.SnapshotLevel, 1, 2)]
			if snap[1500] != nil || snap[2000] != nil {
				t.Fatal("pages of a bad hint handed over")
			}
		})
	}
}

// TestHintTooLarge: a hint copying more than the bound is still read for
// its checksums, and its frames are not handed over.
func TestHintTooLarge(t *testing.T) {
	r := newTestReplica(t)
	r.grow(4000)
	r.apply(4000, 2000)
	r.snapshot()
	r.hintOf(storage.SnapshotLevel, 1, 2, 1500, 2000)
	var l frameLog
	x := New(r.client, Options{Frames: l.sink(t), HintFrameBytes: 10})
	v := mustUpdate(t, x)
	if snap := l.pages[storage.FileName(storage.SnapshotLevel, 1, 2)]; snap[1500] != nil {
		t.Fatal("the frames of a hint over the bound were handed over")
	}
	if e, _ := v.Lookup(1500); !e.File.Verified() {
		t.Fatal("a hint over the bound was not used for its checksums")
	}
}

// slowHintList lists the hints after the levels.
type slowHintList struct {
	storage.Client
}

func (c slowHintList) ListObjects(ctx context.Context, dir string) ([]storage.ObjectInfo, error) {
	select {
	case <-time.After(50 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.Client.ListObjects(ctx, dir)
}

// TestHintListedLast: hints that list after every level are still read.
func TestHintListedLast(t *testing.T) {
	r := newTestReplica(t)
	r.grow(4000)
	r.apply(4000, 2000)
	r.snapshot()
	r.hintOf(storage.SnapshotLevel, 1, 2, 1500)
	var l frameLog
	x := New(slowHintList{r.client}, Options{Frames: l.sink(t), HintFrameBytes: 1 << 20})
	mustUpdate(t, x)
	if l.pages[storage.FileName(storage.SnapshotLevel, 1, 2)][1500] == nil {
		t.Fatal("the hint listed last was not read")
	}
}
