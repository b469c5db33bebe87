package writer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/writer"
)

// TestReplicaEmptied empties a replica (a directory here; on S3 its bucket
// deleted and created again, see internal/reliability) under a writer:
// the writer stops with ErrReplicaLost, naming the replica and saying to
// restart, rather than blaming another writer or going on. A writer
// started on what it left (a file that landed after the rest were
// removed: a replica that restores to nothing) refuses it, saying so; on
// the replica emptied, a writer begins it again, and it restores to the
// database: nothing was lost.
func TestReplicaEmptied(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	r := newReplicator(t, path, c, testOpts())
	for range 3 {
		insert(t, app, 20)
		mustSync(t, r)
	}

	empty := func() {
		if err := os.RemoveAll(filepath.Join(c.Root(), "ltx")); err != nil {
			t.Fatal(err)
		}
	}
	empty()
	insert(t, app, 20)
	err := r.Sync(ctx)
	if !errors.Is(err, writer.ErrReplicaLost) || !strings.Contains(err.Error(), c.String()) || !strings.Contains(err.Error(), "restart the writer") {
		t.Fatalf("sync into the emptied replica: %v, want writer.ErrReplicaLost naming %s and saying to restart", err, c)
	}
	if !errors.Is(r.Err(), writer.ErrReplicaLost) {
		t.Fatalf("Err() = %v, want writer.ErrReplicaLost", r.Err())
	}
	r.Close(ctx)

	if len(listLevel(t, c, 0)) > 0 {
		// The file of the sync that found out landed before its manifest
		// was refused: a writer must not go on from it.
		r2 := newReplicator(t, path, c, testOpts())
		err := r2.Sync(ctx)
		if !errors.Is(err, writer.ErrReplicaLost) || !strings.Contains(err.Error(), "restores only up to") {
			t.Fatalf("a writer started on a replica that restores to nothing: %v, want writer.ErrReplicaLost saying so", err)
		}
		r2.Close(ctx)
	}

	empty()
	r3 := newReplicator(t, path, c, testOpts())
	defer r3.Close(ctx)
	insert(t, app, 20)
	mustSync(t, r3)
	checkRestores(t, c, app, "the replica begun again does not restore to the database")
}
