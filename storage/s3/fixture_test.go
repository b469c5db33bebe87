package s3_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/fixture"
	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// s3Key maps a path of the file-layout fixture (ltx/<level>/<name>, or
// anything else) to its key in the S3 layout under prefix.
func s3Key(prefix, p string) string {
	parts := strings.Split(p, "/")
	if len(parts) == 3 && parts[0] == "ltx" {
		if level, err := strconv.Atoi(parts[1]); err == nil {
			return prefix + "/" + fmt.Sprintf("%04x", level) + "/" + parts[2]
		}
	}
	return prefix + "/" + p
}

// plantForeign puts the fixture's foreign files at their S3 places, plus
// what only S3 can hold: keys in a deeper "directory", under a prefix that
// shares the replica's first letters, and a temp upload of the snapshot.
func plantForeign(t *testing.T, r *s3test.Replica, m *fixture.Manifest) {
	t.Helper()
	for _, p := range m.Foreign {
		b, err := os.ReadFile(filepath.Join(fixture.Dir(), filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		put(t, r, s3Key(r.Prefix, p), b, nil)
	}
	snap := m.FilesAt(storage.SnapshotLevel)[0]
	b, err := os.ReadFile(filepath.Join(fixture.Dir(), filepath.FromSlash(snap.Path)))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		r.Prefix + "/0000/old/0000000000000014-0000000000000014.ltx",
		r.Prefix + "-old/0000/0000000000000014-0000000000000014.ltx",
		r.Prefix + "/0009/" + filepath.Base(snap.Path) + ".upload",
	} {
		put(t, r, key, b, nil)
	}
}

// TestLitestreamFixture uploads the fixture as Litestream v0.5 does, with
// the raw SDK: each LTX file at its S3 key with the header timestamp in
// litestream-timestamp metadata (RFC 3339 with nanoseconds, as Litestream
// formats it), plus foreign keys; the backend must list and read it exactly
// as the manifest says.
func TestLitestreamFixture(t *testing.T) { s3test.ForEach(t, testLitestreamFixture) }

func testLitestreamFixture(t *testing.T, srv *s3test.Server) {
	r := srv.NewReplica(t)
	m, err := fixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		b, err := os.ReadFile(filepath.Join(fixture.Dir(), filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		key := storage.ObjectKey(r.Prefix, f.Level, f.MinTXID, f.MaxTXID)
		if key != s3Key(r.Prefix, f.Path) {
			t.Fatalf("%s maps to %s, the layout says %s", f.Path, s3Key(r.Prefix, f.Path), key)
		}
		put(t, r, key, b, map[string]string{"litestream-timestamp": f.CreatedAt().Format(time.RFC3339Nano)})
	}
	plantForeign(t, r, m)
	storagetest.CheckLitestreamFixture(t, r.Client, m)
}

// TestFixtureWrittenThroughClient writes the fixture through the backend,
// as ltx-writer does, and checks it the same way.
func TestFixtureWrittenThroughClient(t *testing.T) {
	s3test.ForEach(t, testFixtureWrittenThroughClient)
}

func testFixtureWrittenThroughClient(t *testing.T, srv *s3test.Server) {
	r := srv.NewReplica(t)
	m, err := fixture.Upload(context.Background(), r.Client)
	if err != nil {
		t.Fatal(err)
	}
	plantForeign(t, r, m)
	storagetest.CheckLitestreamFixture(t, r.Client, m)
}
