package httpstore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/nginxtest"
	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	httpstore "github.com/ltxvfs/ltxvfs/storage/http"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// testOptions keep a test from waiting long on a retry or a missing file.
var testOptions = httpstore.Options{MaxBackoff: 20 * time.Millisecond, NotFoundRetry: 100 * time.Millisecond}

// open opens the backend on a URL with opts.
func open(tb testing.TB, raw string, opts httpstore.Options) *httpstore.Client {
	tb.Helper()
	u, err := storage.ParseURL(raw)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := httpstore.New(u, opts)
	if err != nil {
		tb.Fatalf("open %s: %v", raw, err)
	}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

// backdate sets the mtime of an object of the file replica at root.
func backdate(root string) func(t *testing.T, name string, mtime time.Time) {
	return func(t *testing.T, name string, mtime time.Time) {
		t.Helper()
		p := filepath.Join(storage.FileObjectDir(root), filepath.FromSlash(name))
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// pairs serves root with nginx and hands out replicas in folders of it,
// written through the file backend and read over HTTP.
func pairs(t *testing.T, cfg nginxtest.Config) func(t *testing.T) storagetest.ReadPair {
	cfg.Root = t.TempDir()
	srv := nginxtest.Start(t, cfg)
	var seq atomic.Int64
	return func(t *testing.T) storagetest.ReadPair {
		name := fmt.Sprintf("replica-%d", seq.Add(1))
		root := filepath.Join(cfg.Root, name)
		return storagetest.ReadPair{
			Write:    file.New(root),
			Read:     open(t, srv.URL+"/"+name, testOptions),
			Backdate: backdate(root),
		}
	}
}

func TestReadContractNginx(t *testing.T) {
	storagetest.RunReadContract(t, pairs(t, nginxtest.Config{}))
}

// Without ETags, conditional reads go by Last-Modified.
func TestReadContractNginxLastModifiedOnly(t *testing.T) {
	storagetest.RunReadContract(t, pairs(t, nginxtest.Config{NoETag: true}))
}

func TestReadContractNginxTLS(t *testing.T) {
	root := t.TempDir()
	srv := nginxtest.Start(t, nginxtest.Config{Root: root, TLS: true})
	var seq atomic.Int64
	storagetest.RunReadContract(t, func(t *testing.T) storagetest.ReadPair {
		name := fmt.Sprintf("replica-%d", seq.Add(1))
		dir := filepath.Join(root, name)
		return storagetest.ReadPair{
			Write:    file.New(dir),
			Read:     open(t, srv.TLSURL+"/"+name+"?ca-file="+srv.CAFile, testOptions),
			Backdate: backdate(dir),
		}
	})
}

// A replica the s3 backend wrote, served as a public bucket or a CDN
// serves one (nginx over the S3 server's files), read with layout=s3.
func TestReadContractS3LayoutOverHTTP(t *testing.T) {
	s3 := s3test.Start(t)
	bucket := s3.NewBucket(t)
	srv := nginxtest.Start(t, nginxtest.Config{Root: s3.BucketDir(bucket)})
	var seq atomic.Int64
	storagetest.RunReadContract(t, func(t *testing.T) storagetest.ReadPair {
		prefix := fmt.Sprintf("replica-%d", seq.Add(1))
		return storagetest.ReadPair{
			Write: s3.Client(t, s3.URL(bucket, prefix)),
			Read:  open(t, srv.URL+"/"+prefix+"?layout=s3", testOptions),
			Backdate: func(t *testing.T, name string, mtime time.Time) {
				t.Helper()
				p := filepath.Join(s3.BucketDir(bucket), prefix, storage.ObjectDir, filepath.FromSlash(name))
				if err := os.Chtimes(p, mtime, mtime); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}
