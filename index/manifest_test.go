package index

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/storage"
)

// publish writes a manifest of the replica's newest plan (as listed now)
// with seq, as a writer does: the hints of the larger files, the others
// inline. It returns the manifest.
func (r *testReplica) publish(seq uint64) *manifest.Manifest {
	r.tb.Helper()
	ctx := context.Background()
	all, err := storage.ListAll(ctx, r.store, false)
	if err != nil {
		r.tb.Fatal(err)
	}
	files, err := plan.Restore(all, 0)
	if err != nil {
		r.tb.Fatal(err)
	}
	m := &manifest.Manifest{Seq: seq, Published: time.Now().UTC()}
	for _, info := range files {
		rc, err := r.store.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
		if err != nil {
			r.tb.Fatal(err)
		}
		file, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			r.tb.Fatal(err)
		}
		h, err := manifest.BuildHint(info.Level, bytes.NewReader(file))
		if err != nil {
			r.tb.Fatal(err)
		}
		var size int64
		if h.Size > manifest.WholeFileMax {
			b := h.Encode()
			size = int64(len(b))
			r.putHint(manifest.HintName(h.Source()), b)
		}
		m.Files = append(m.Files, manifest.FileOf(h, size))
	}
	last := m.Files[len(m.Files)-1]
	m.TXID, m.Time = last.MaxTXID, last.Created
	r.putManifest(m)
	return m
}

func (r *testReplica) putManifest(m *manifest.Manifest) {
	r.tb.Helper()
	b, err := m.Encode()
	if err != nil {
		r.tb.Fatal(err)
	}
	r.putObject(manifest.Name, b)
}

func (r *testReplica) putObject(name string, b []byte) {
	r.tb.Helper()
	if _, err := r.store.WriteObject(context.Background(), name, bytes.NewReader(b), storage.WriteOptions{}); err != nil {
		r.tb.Fatal(err)
	}
}

// TestManifestOpenAndFollow: a replica with a manifest opens with the
// manifest and the hints of its large files (one parallel round), no
// listing, no read of any LTX file; a poll with nothing new is one
// conditional read answered 304; a new small file costs the manifest's
// read alone; a compaction is followed without a listing too.
func TestManifestOpenAndFollow(t *testing.T) {
	r := newTestReplica(t)
	r.grow(4000) // a snapshot-sized L0 file, larger than WholeFileMax
	r.apply(4000, 1, 3000)
	r.apply(4000, 2, 10)
	r.publish(1)

	var l frameLog
	x := New(r.client, Options{Frames: l.sink(t), HintFrameBytes: 1 << 20})
	r.client.Reset()
	v := mustUpdate(t, x)
	r.check(v)
	l.check(t, r, v)
	c := r.client.Counts()
	if c.Lists+c.ObjectLists != 0 || c.ObjectReads != 2 || c.Opens != 1 {
		t.Fatalf("open: %+v; want the manifest read, then the hint and page 1 of the newest file holding it in one round, nothing listed", c)
	}
	if l.pages[storage.FileName(0, 2, 2)][1] == nil {
		t.Fatal("page 1, read with the hints, was not handed over")
	}
	if !x.FromManifest() {
		t.Fatal("FromManifest is false")
	}
	if e, _ := v.Lookup(3000); !e.File.Verified() {
		t.Fatal("a page named by an inline index is not checked")
	}

	r.client.Reset()
	if v2 := mustUpdate(t, x); v2 != v {
		t.Fatal("an unchanged manifest gave a new version")
	}
	if c := r.client.Counts(); c.Requests() != 1 || c.ObjectNotModified != 1 {
		t.Fatalf("a poll with nothing new: %+v, want one conditional read answered 304", c)
	}

	r.apply(4000, 3, 3999)
	r.publish(2)
	r.client.Reset()
	v = mustUpdate(t, x)
	r.check(v)
	if c := r.client.Counts(); c.Requests() != 1 || v.TXID() != 4 {
		t.Fatalf("a poll with a new file: %+v at TXID %d, want the manifest's read alone", c, v.TXID())
	}

	r.compact(1, 2, 4)
	r.apply(4000, 5)
	r.publish(3)
	r.client.Reset()
	v = mustUpdate(t, x)
	r.check(v)
	if c := r.client.Counts(); c.Lists+c.ObjectLists != 0 {
		t.Fatalf("following a compaction listed: %+v", c)
	}

	// Pinning at a TXID the manifest's plan passes through lists nothing.
	// (The compaction made the index forget the files it replaced: their
	// frames may be handed over again.)
	l.pages = map[string]map[uint32][]byte{}
	r.client.Reset()
	old, err := x.At(context.Background(), 4)
	if err != nil {
		t.Fatal(err)
	}
	r.check(old)
	if c := r.client.Counts(); c.Lists+c.ObjectLists != 0 {
		t.Fatalf("At a TXID of the manifest's plan listed: %+v", c)
	}
	// One it does not pass through lists.
	r.client.Reset()
	old, err = x.At(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	r.check(old)
	if c := r.client.Counts(); c.Lists == 0 {
		t.Fatal("At a TXID the manifest's plan skips did not list")
	}
}

// TestManifestBadInput: a manifest that is damaged, cut short, of another
// format, goes backwards, or names files that are missing or differ is
// never followed into a wrong page: the index lists instead (or keeps its
// last good version, for one that goes backwards), and the versions it
// returns are right.
func TestManifestBadInput(t *testing.T) {
	encode := func(t *testing.T, m *manifest.Manifest) []byte {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range []struct {
		name  string
		spoil func(t *testing.T, r *testReplica, m *manifest.Manifest)
	}{
		{"damaged", func(t *testing.T, r *testReplica, m *manifest.Manifest) {
			b := encode(t, m)
			b[len(b)/2] ^= 1
			r.putObject(manifest.Name, b)
		}},
		{"cut short", func(t *testing.T, r *testReplica, m *manifest.Manifest) {
			b := encode(t, m)
			r.putObject(manifest.Name, b[:len(b)-10])
		}},
		{"older format", func(t *testing.T, r *testReplica, m *manifest.Manifest) {
			r.putObject(manifest.Name, bytes.Replace(encode(t, m), []byte("ltxvfs-manifest 1 "), []byte("ltxvfs-manifest 0 "), 1))
		}},
		{"a file that differs", func(t *testing.T, r *testReplica, m *manifest.Manifest) {
			// The manifest names a snapshot-sized file whose hint is gone:
			// the file is read, and its checksum is not the manifest's.
			m.Files[0].Checksum ^= 1
			r.putManifest(m)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestReplica(t)
			r.grow(4000)
			r.apply(4000, 1, 3000)
			r.apply(4000, 2, 10)
			m := r.publish(1)
			tt.spoil(t, r, m)
			x := New(r.client, Options{})
			v := mustUpdate(t, x)
			r.check(v)
			if v.TXID() != 3 {
				t.Fatalf("TXID %d, want 3", v.TXID())
			}
			if x.FromManifest() {
				t.Fatal("followed a bad manifest")
			}
		})
	}

	t.Run("goes backwards", func(t *testing.T) {
		r := newTestReplica(t)
		r.grow(4000)
		r.apply(4000, 1, 3000)
		older := r.publish(1)
		r.apply(4000, 2, 10)
		r.publish(2)
		x := New(r.client, Options{})
		v := mustUpdate(t, x)
		r.putManifest(older) // a cache serving an older copy
		if v2 := mustUpdate(t, x); v2 != v || v.TXID() != 3 {
			t.Fatalf("TXID %d after an older manifest, want %d kept", v2.TXID(), v.TXID())
		}
	})

	t.Run("claims a TXID no file holds", func(t *testing.T) {
		r := newTestReplica(t)
		r.grow(4000)
		r.apply(4000, 1, 3000)
		m := r.publish(1)
		// A file after the newest, named by the manifest but never written.
		next := m.Files[len(m.Files)-1]
		next.MinTXID, next.MaxTXID = next.MaxTXID+1, next.MaxTXID+1
		m.Files, m.TXID = append(m.Files, next), next.MaxTXID
		// Its inline index still describes the file it was made from.
		h, err := m.Files[len(m.Files)-2].InlineIndex()
		if err != nil {
			t.Fatal(err)
		}
		h.Header.MinTXID, h.Header.MaxTXID = next.MinTXID, next.MaxTXID
		m.Files[len(m.Files)-1] = manifest.FileOf(h, 0)
		r.putManifest(m)
		x := New(r.client, Options{})
		v, err := x.Update(context.Background())
		if err == nil {
			// Building from it needs the file's own pages only when read:
			// any read of them fails, never a wrong page.
			if v.TXID() == next.MaxTXID {
				e, ok := v.Lookup(1)
				if ok && e.File.Info.MaxTXID == next.MaxTXID {
					if _, _, err := readPage(t, r.store, e); err == nil {
						t.Fatal("a page of a file that does not exist was read")
					}
				}
				return
			}
			r.check(v)
		}
	})

	t.Run("a missing file", func(t *testing.T) {
		// A small file named by the manifest is not read at open (its
		// index is inline): a read of it finds it gone, and the replan
		// lists.
		r := newTestReplica(t)
		r.grow(4000)
		r.apply(4000, 1, 3000)
		r.apply(4000, 2, 10)
		r.publish(1)
		r.remove(0, 2, 2)
		r.compact(1, 2, 2) // the listing has another way to TXID 2
		x := New(r.client, Options{})
		v := mustUpdate(t, x)
		e, _ := v.Lookup(3000)
		if _, _, err := readPage(t, r.store, e); !isNotExist(err) {
			t.Fatalf("page 3000 from %s: %v, want it gone", e.File.Name(), err)
		}
		v, err := x.Replan(context.Background(), v)
		if err != nil {
			t.Fatal(err)
		}
		r.check(v)
	})
}

// TestStaleManifest: a manifest that stops moving while L0 files go on
// after it (a writer that does not publish one, after a switch back to
// Litestream) is found stale by one read of the next file, and the
// replica is listed.
func TestStaleManifest(t *testing.T) {
	defer func(d time.Duration) { staleAfter = d }(staleAfter)
	staleAfter = 0
	r := newTestReplica(t)
	r.grow(4000)
	r.apply(4000, 1, 3000)
	r.publish(1)
	x := New(r.client, Options{})
	if v := mustUpdate(t, x); v.TXID() != 2 || !x.FromManifest() {
		t.Fatalf("TXID %d, from the manifest: %v", v.TXID(), x.FromManifest())
	}
	r.client.Reset()
	if v := mustUpdate(t, x); v.TXID() != 2 {
		t.Fatal(v.TXID())
	}
	if c := r.client.Counts(); c.Opens != 1 || c.Lists != 0 {
		t.Fatalf("%+v: want one look for the next file", c)
	}
	r.apply(4000, 2, 10) // not published
	v := mustUpdate(t, x)
	r.check(v)
	if v.TXID() != 3 || x.FromManifest() {
		t.Fatalf("TXID %d, from the manifest: %v; want 3 from a listing", v.TXID(), x.FromManifest())
	}
}

// memObjects is an ObjectCache in memory.
type memObjects struct {
	m    map[string][]byte
	gets int
}

func (c *memObjects) GetObject(name string) ([]byte, bool) {
	c.gets++
	b, ok := c.m[name]
	return b, ok
}
func (c *memObjects) PutObject(name string, b []byte) { c.m[name] = bytes.Clone(b) }
func (c *memObjects) RemoveObject(name string)        { delete(c.m, name) }

// TestManifestOpenWithKeptHints: a reader started again with the hints it
// read kept (the disk tier) opens with the manifest's read alone; a kept
// hint that was damaged is read again.
func TestManifestOpenWithKeptHints(t *testing.T) {
	r := newTestReplica(t)
	r.grow(4000)
	r.apply(4000, 1, 3000)
	r.publish(1)
	cache := &memObjects{m: map[string][]byte{}}
	mustUpdate(t, New(r.client, Options{Objects: cache}))
	if len(cache.m) != 1 {
		t.Fatalf("%d hints kept, want 1", len(cache.m))
	}
	r.client.Reset()
	// A disk tier holds the hints, and page 1 (read for the open before).
	held := func(*File, uint32) bool { return true }
	v := mustUpdate(t, New(r.client, Options{Objects: cache, Held: held}))
	r.check(v)
	if c := r.client.Counts(); c.Requests() != 1 {
		t.Fatalf("a restart with the hints and page 1 kept: %+v, want the manifest's read alone", c)
	}
	for name, b := range cache.m {
		b[len(b)/2] ^= 1
		cache.m[name] = b
	}
	r.client.Reset()
	v = mustUpdate(t, New(r.client, Options{Objects: cache}))
	r.check(v)
	if c := r.client.Counts(); c.ObjectReads != 2 {
		t.Fatalf("a damaged kept hint: %+v, want it read again", c)
	}
}
