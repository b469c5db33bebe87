package writer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/mem"
)

// TestPublishedFilesExpire: retention keeps the files of the current
// manifest and of writes in doubt for good, and those of a replaced
// manifest until ManifestGrace has passed since it was replaced, then
// forgets it.
func TestPublishedFilesExpire(t *testing.T) {
	file := func(min, max ltx.TXID) manifest.File { return manifest.File{MinTXID: min, MaxTXID: max} }
	r := &Replicator{opts: Options{ManifestGrace: time.Minute}}
	t0 := time.Now()
	r.pub.current = &manifest.Manifest{Files: []manifest.File{file(1, 1)}}
	r.pub.inDoubt = []doubtful{{files: keysOf([]manifest.File{file(1, 2)})}}
	r.pub.replaced = []replacedManifest{{t0, keysOf([]manifest.File{file(1, 3)})}}
	del := []*ltx.FileInfo{{MinTXID: 1, MaxTXID: 1}, {MinTXID: 1, MaxTXID: 2}, {MinTXID: 1, MaxTXID: 3}, {MinTXID: 1, MaxTXID: 4}}

	if got := r.keepPublished(slices.Clone(del), t0.Add(time.Minute-time.Nanosecond)); len(got) != 1 || got[0].MaxTXID != 4 {
		t.Fatalf("within the grace retention deletes %v, want only the file no manifest names", got)
	}
	got := r.keepPublished(slices.Clone(del), t0.Add(time.Minute))
	if len(got) != 2 || got[0].MaxTXID != 3 || got[1].MaxTXID != 4 {
		t.Fatalf("once the grace is over retention deletes %v, want the replaced manifest's file too", got)
	}
	if len(r.pub.replaced) != 0 {
		t.Fatal("a manifest replaced longer than the grace ago is still remembered")
	}
}

// failingManifest refuses every manifest write before it reaches storage.
type failingManifest struct {
	storage.Client
	writes int
}

func (c *failingManifest) WriteObject(ctx context.Context, name string, r io.Reader, opts storage.WriteOptions) (storage.ObjectInfo, error) {
	if name == manifest.Name {
		c.writes++
		return storage.ObjectInfo{}, errors.New("connection refused (test)")
	}
	return c.Client.WriteObject(ctx, name, r, opts)
}

// TestWritesInDoubtAreBounded: while manifest writes fail, a publish with
// the plan unchanged sends the same manifest again (nothing more to
// remember), and the writes in doubt remembered stay bounded however many
// plans fail; once a write lands they count as replaced.
func TestWritesInDoubtAreBounded(t *testing.T) {
	ctx := context.Background()
	defer func(d time.Duration) { publishBackoff = d }(publishBackoff)
	publishBackoff = 0
	c := &failingManifest{Client: mem.New()}
	r := &Replicator{raw: c, client: c, opts: Options{ManifestGrace: time.Minute}, log: slog.New(slog.DiscardHandler)}
	var err error
	if r.m, err = newMetrics(nil, "test", r); err != nil {
		t.Fatal(err)
	}
	r.pub.files, r.pub.ready = map[fileKey]manifest.File{}, true
	add := func(txid ltx.TXID) {
		f := manifest.File{Level: 0, MinTXID: txid, MaxTXID: txid, Size: manifest.WholeFileMax + 1, Created: time.UnixMilli(int64(txid)).UTC()}
		if txid == 1 {
			f.Level = storage.SnapshotLevel
		}
		r.pub.files[keyOfFile(f)] = f
		r.pub.changed = true
	}
	add(1)
	for range 3 {
		if err := r.publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.pub.inDoubt); n != 1 || c.writes != 3*publishAttempts {
		t.Fatalf("3 publishes of one plan: %d writes in doubt remembered, %d writes; want 1, %d", n, c.writes, 3*publishAttempts)
	}
	for txid := ltx.TXID(2); txid < 2*maxInDoubt; txid++ {
		add(txid)
		if err := r.publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.pub.inDoubt); n != maxInDoubt {
		t.Fatalf("%d writes in doubt remembered, want at most %d", n, maxInDoubt)
	}
	if last := r.pub.inDoubt[maxInDoubt-1].m; last.TXID != 2*maxInDoubt-1 {
		t.Fatalf("the newest write in doubt is at TXID %s, want %d", last.TXID, 2*maxInDoubt-1)
	}

	r.client = c.Client // storage answers again
	if err := r.publish(ctx); err != nil {
		t.Fatal(err)
	}
	if len(r.pub.inDoubt) != 0 || r.pub.current == nil || len(r.pub.replaced) != maxInDoubt {
		t.Fatalf("after a write landed: %d in doubt, %d replaced, current %v", len(r.pub.inDoubt), len(r.pub.replaced), r.pub.current != nil)
	}
}
