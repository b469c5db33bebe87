package httpstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/nginxtest"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	httpstore "github.com/ltxvfs/ltxvfs/storage/http"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// badSite is nginx with the locations a replica URL can wrongly lead to.
const badSite = `
        location ^~ /site/ {
            try_files $uri /site/index.html;
        }
        location ^~ /denied/ {
            return 403;
        }
        location ^~ /loop/ {
            return 302 $uri;
        }
        location ^~ /ping/ {
            rewrite ^/ping/(.*)$ /pong/$1 redirect;
        }
        location ^~ /pong/ {
            rewrite ^/pong/(.*)$ /ping/$1 redirect;
        }
        location ^~ /moved/ {
            rewrite ^/moved/(.*)$ /replica/$1 redirect;
        }
`

// replicaSite writes one LTX file and a manifest object into root/replica
// and returns the file's bytes.
func replicaSite(t testing.TB, root string) []byte {
	t.Helper()
	w := file.New(filepath.Join(root, "replica"))
	data := storagetest.NewDB(4096).Apply(t, 2, map[uint32][]byte{1: storagetest.FillPage(4096, 1, 1), 2: storagetest.FillPage(4096, 2, 1)})
	if _, err := w.WriteLTXFile(context.Background(), 0, 1, 1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteObject(context.Background(), "manifest", strings.NewReader("manifest"), storage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return data
}

func readObject(c storage.Client, name string) error {
	_, _, err := storage.ReadAllObject(context.Background(), c, name, storage.ReadOptions{}, 1<<20)
	return err
}

func readFile(c storage.Client, offset, size int64) ([]byte, error) {
	rc, err := c.OpenLTXFile(context.Background(), 0, 1, 1, offset, size)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestURLThatIsNotAReplica(t *testing.T) {
	root := t.TempDir()
	data := replicaSite(t, root)
	if err := os.MkdirAll(filepath.Join(root, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "site", "index.html"), []byte("<html>a site</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := nginxtest.Start(t, nginxtest.Config{Root: root, Locations: badSite})

	for _, tt := range []struct {
		path, says string
		notExist   bool
	}{
		{"/elsewhere", "404 Not Found", true}, // nothing there: no manifest
		{"/site", "HTML page", false},         // a site that answers every path with its page
		{"/denied", "access denied", false},
		{"/loop", "redirect loop", false},
		{"/ping", "redirect loop", false},
	} {
		c := open(t, srv.URL+tt.path, testOptions)
		for what, err := range map[string]error{
			"manifest": readObject(c, "manifest"),
			"file":     second(readFile(c, 0, 0)),
			"range":    second(readFile(c, 10, 20)),
		} {
			if err == nil || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), srv.URL+tt.path+"/ltx/") {
				t.Errorf("%s: %s: got %v, want an error naming the URL that says %q", tt.path, what, err, tt.says)
				continue
			}
			if errors.Is(err, os.ErrNotExist) != tt.notExist {
				t.Errorf("%s: %s: %v: matches os.ErrNotExist: %v, want %v", tt.path, what, err, !tt.notExist, tt.notExist)
			}
		}
		if _, err := c.LTXFiles(context.Background(), 0, 0, false); !errors.Is(err, httpstore.ErrNotListable) || !strings.Contains(err.Error(), "manifest") {
			t.Errorf("%s: listing: got %v, want ErrNotListable saying a manifest is needed", tt.path, err)
		}
	}
	// 403 is not retried: once per read above, no more.
	denied := 0
	for _, r := range srv.Requests(t, nginxtest.Origin, 1) {
		if strings.HasPrefix(r.URI, "/denied/") {
			denied++
		}
	}
	if denied != 3 {
		t.Errorf("the 403s took %d requests for 3 reads, want 3 (no retry)", denied)
	}

	// A replica moved behind a redirect still reads, ranges included.
	c := open(t, srv.URL+"/moved", testOptions)
	got, err := readFile(c, 10, 20)
	if err != nil || !bytes.Equal(got, data[10:30]) {
		t.Fatalf("a ranged read through a redirect: %v, %d bytes equal: %v", err, len(got), bytes.Equal(got, data[10:30]))
	}
	if err := readObject(c, "manifest"); err != nil {
		t.Fatal(err)
	}
}

func TestServerIgnoresRange(t *testing.T) {
	root := t.TempDir()
	small := replicaSite(t, root)
	// A file above MaxIgnoredRange: pages of random bytes do not compress.
	pages := map[uint32][]byte{}
	for pgno := uint32(1); pgno <= 300; pgno++ {
		pages[pgno] = randomPage(int64(pgno))
	}
	big := storagetest.NewDB(4096).Apply(t, 300, pages)
	if len(big) <= httpstore.MaxIgnoredRange {
		t.Fatalf("the big file has %d bytes, not more than %d", len(big), httpstore.MaxIgnoredRange)
	}
	if _, err := file.New(filepath.Join(root, "replica")).WriteLTXFile(context.Background(), 1, 1, 1, bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	srv := nginxtest.Start(t, nginxtest.Config{Root: root, IgnoreRange: true})
	var logs bytes.Buffer
	opts := testOptions
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c := open(t, srv.URL+"/replica", opts)

	// A small file is read whole and the bytes before the range dropped.
	n := int64(len(small))
	for _, r := range []struct{ off, size int64 }{{0, 1}, {10, 20}, {n - ltx.TrailerSize, ltx.TrailerSize}, {7, 0}} {
		got, err := readFile(c, r.off, r.size)
		want := small[r.off:]
		if r.size > 0 {
			want = small[r.off : r.off+r.size]
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read [%d,+%d) from a server that ignores Range: %v, %d bytes, equal: %v", r.off, r.size, err, len(got), bytes.Equal(got, want))
		}
	}
	if _, err := readFile(c, n-4, 10); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a range running past the end: got %v, want io.ErrUnexpectedEOF", err)
	}
	if strings.Count(logs.String(), "ignores Range") != 1 {
		t.Fatalf("want one warning that the server ignores Range, the log holds:\n%s", logs.String())
	}
	for _, r := range srv.Requests(t, nginxtest.Origin, 5) {
		if r.Status != 200 {
			t.Fatalf("nginx with max_ranges 0 answered %+v; the test needs 200s", r)
		}
	}

	// A large one is refused, clearly, never misread.
	rc, err := c.OpenLTXFile(context.Background(), 1, 1, 1, 4096, 100)
	if err == nil {
		rc.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "ignored the Range header") || !strings.Contains(err.Error(), "/replica/ltx/1/") {
		t.Fatalf("a ranged read of a large file from a server that ignores Range: got %v, want a clear error naming the file", err)
	}
}

// randomPage is a page of bytes that do not compress.
func randomPage(seed int64) []byte {
	b := make([]byte, 4096)
	x := uint64(seed)*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

func second[T any](_ T, err error) error { return err }
