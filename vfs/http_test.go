package vfs

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/nginxtest"
	"github.com/ltxvfs/ltxvfs/storage"
)

// A replica on a web server opens from its manifest; without one there is
// nothing to list, and the open says so.
func TestHTTPReplicaWithoutManifest(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(x)`)
	src.exec(`INSERT INTO t VALUES (1)`)
	if err := os.Remove(filepath.Join(storage.FileObjectDir(src.dir), "manifest")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	srv := nginxtest.Start(t, nginxtest.Config{Root: filepath.Dir(src.dir)})
	replica := srv.URL + "/" + filepath.Base(src.dir)
	db := openDB(t, "file:app.db?vfs=ltx&replica="+url.QueryEscape(replica))
	_, err := db.Exec(`SELECT * FROM t`)
	if err == nil || !strings.Contains(err.Error(), "manifest") || !strings.Contains(err.Error(), replica) {
		t.Fatalf("open an HTTP replica without a manifest: got %v, want an error naming it that says a manifest is needed", err)
	}
}

// Two URLs of other replicas, or of one replica with other headers or
// CAs, never share a replica (and its client).
func TestHTTPReplicaKeys(t *testing.T) {
	key := func(raw string) string {
		u, err := storage.ParseURL(raw)
		if err != nil {
			t.Fatal(err)
		}
		return normalizedURL(u)
	}
	if key("https://h/a") != key("https://h/a/") {
		t.Error("a trailing slash makes another replica")
	}
	seen := map[string]string{}
	for _, raw := range []string{
		"https://h/a", "https://h/b", "https://g/a", "http://h/a", "https://h:8443/a",
		"https://h/a?bearer-token-env=T", "https://h/a?header-env=H", "https://h/a?ca-file=/ca.pem",
	} {
		k := key(raw)
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s share the key %s", raw, other, k)
		}
		seen[k] = raw
	}
}
