package writer

import (
	"slices"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
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
	r.pub.unconfirmed = [][]fileKey{keysOf([]manifest.File{file(1, 2)})}
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
