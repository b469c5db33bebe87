package writer_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
)

// readHistory is the History of the replica's manifest.
func readHistory(t *testing.T, c storage.Client) string {
	t.Helper()
	b, _, err := storage.ReadAllObject(context.Background(), c, manifest.Name, storage.ReadOptions{}, manifest.MaxSize)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return m.History
}

// TestManifestHistory: the writer that begins a replica names its history
// in the manifest; a writer started again on it keeps the name; a replica
// begun anew (here another, empty one of the same database) gets another,
// by which readers tell that its TXIDs name other commits.
func TestManifestHistory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insert(t, app, 5)
	c := newReplica(t)
	r := newReplicator(t, path, c, testOpts())
	mustSync(t, r)
	first := readHistory(t, c)
	if len(first) != 16 {
		t.Fatalf("history %q, want 16 hex digits", first)
	}
	r.Close(ctx)

	insert(t, app, 5)
	r = newReplicator(t, path, c, testOpts())
	mustSync(t, r)
	if got := readHistory(t, c); got != first {
		t.Fatalf("a writer started again named the history %q, was %q", got, first)
	}
	r.Close(ctx)

	other := newReplica(t)
	r = newReplicator(t, path, other, testOpts())
	defer r.Close(ctx)
	mustSync(t, r)
	if got := readHistory(t, other); got == first || len(got) != 16 {
		t.Fatalf("a replica begun anew has history %q (the first: %q)", got, first)
	}
}
