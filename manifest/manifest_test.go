package manifest_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// sampleManifest is a snapshot (large: named by its hint) then two small
// L0 files (inline indexes), as a writer publishes it.
func sampleManifest(t testing.TB) *manifest.Manifest {
	t.Helper()
	snap := build(t, 9, sampleFile(t))
	var files []manifest.File
	files = append(files, manifest.FileOf(snap, 12345))
	// Two L0 files that follow the snapshot's TXID 1.
	src := storagetest.NewDB(4096)
	src.Apply(t, 160, map[uint32][]byte{1: bigPage(4096, 1)})
	for range 2 {
		l0 := src.Apply(t, 160, map[uint32][]byte{2: bigPage(4096, uint32(src.TXID()))})
		files = append(files, manifest.FileOf(build(t, 0, l0), 0))
	}
	return &manifest.Manifest{TXID: 3, Time: time.UnixMilli(1_700_000_000_000).UTC(), Seq: 7, Published: time.Now().UTC(), Files: files}
}

func TestManifestRoundTrip(t *testing.T) {
	m := sampleManifest(t)
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := manifest.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.TXID != 3 || got.Seq != 7 || !got.Time.Equal(m.Time) || !got.SameFiles(m) {
		t.Fatalf("decoded %+v", got)
	}
	if got.Files[0].HintSize != 12345 || got.Files[0].Index != nil {
		t.Errorf("the snapshot is not named by its hint: %+v", got.Files[0])
	}
	idx, err := got.Files[1].InlineIndex()
	if err != nil || idx == nil || len(idx.Pgnos) != 1 || idx.Pgnos[0] != 2 || len(idx.Frames) != 0 {
		t.Fatalf("inline index of an L0 file: %+v, %v", idx, err)
	}
}

// TestManifestDamage: a manifest cut short, changed anywhere, of another
// format version, or whose plan does not hold together is refused with
// ErrInvalid, saying why.
func TestManifestDamage(t *testing.T) {
	m := sampleManifest(t)
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 10, len(b) / 2, len(b) - 1} {
		if _, err := manifest.Decode(b[:n]); !errors.Is(err, manifest.ErrInvalid) {
			t.Errorf("cut to %d bytes: %v", n, err)
		}
	}
	for i := 0; i < len(b); i += 7 {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if _, err := manifest.Decode(c); !errors.Is(err, manifest.ErrInvalid) {
			t.Fatalf("byte %d changed: %v", i, err)
		}
	}
	old := bytes.Replace(b, []byte("ltxvfs-manifest 1 "), []byte("ltxvfs-manifest 0 "), 1)
	if _, err := manifest.Decode(old); err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("an older format: %v", err)
	}

	for name, change := range map[string]func(m *manifest.Manifest){
		"no files":          func(m *manifest.Manifest) { m.Files = nil },
		"no snapshot first": func(m *manifest.Manifest) { m.Files = m.Files[1:] },
		"a gap":             func(m *manifest.Manifest) { m.Files = append(m.Files[:1], m.Files[2]) },
		"a file twice":      func(m *manifest.Manifest) { m.Files = append(m.Files[:2], m.Files[1], m.Files[2]) },
		"TXID beyond":       func(m *manifest.Manifest) { m.TXID = 9 },
		"inline index of another file": func(m *manifest.Manifest) {
			m.Files[1].Index, m.Files[2].Index = m.Files[2].Index, m.Files[1].Index
		},
		"small file without its index": func(m *manifest.Manifest) { m.Files[2].Index = nil },
	} {
		c := sampleManifest(t)
		change(c)
		b, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := manifest.Decode(b); !errors.Is(err, manifest.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestManifestOverlappingPlan: a compaction that overlaps the file before
// it in the plan (as plan.Restore chooses: the file that reaches
// furthest) is a valid step.
func TestManifestOverlappingPlan(t *testing.T) {
	src := storagetest.NewDB(4096)
	snap := src.Apply(t, 160, map[uint32][]byte{1: bigPage(4096, 1)}) // [1,1]
	l0 := src.Apply(t, 160, map[uint32][]byte{2: bigPage(4096, 2)})   // [2,2]
	next := src.Apply(t, 160, map[uint32][]byte{3: bigPage(4096, 3)}) // [3,3]
	l1 := storagetest.Compact(t, l0, next)                            // [2,3]
	m := &manifest.Manifest{TXID: 3, Seq: 1, Published: time.Now().UTC(), Files: []manifest.File{
		manifest.FileOf(build(t, 9, storagetest.Compact(t, snap, l0)), 0), // [1,2]
		manifest.FileOf(build(t, 1, l1), 0),                               // [2,3]
	}}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := manifest.Decode(b); err != nil {
		t.Fatalf("a plan whose compaction overlaps the snapshot: %v", err)
	}
}

func TestManifestNewer(t *testing.T) {
	a := &manifest.Manifest{TXID: 5, Seq: 10}
	for _, tt := range []struct {
		b     *manifest.Manifest
		newer bool
	}{
		{&manifest.Manifest{TXID: 6, Seq: 1}, true},
		{&manifest.Manifest{TXID: 5, Seq: 11}, true},
		{&manifest.Manifest{TXID: 5, Seq: 10}, false},
		{&manifest.Manifest{TXID: 4, Seq: 20}, false},
	} {
		if got := tt.b.Newer(a); got != tt.newer {
			t.Errorf("%+v newer than %+v: %v", tt.b, a, got)
		}
	}
}
