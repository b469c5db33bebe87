package httpstore_test

import (
	"context"
	"io"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/nginxtest"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
)

// BenchmarkRangedRead reads 64-byte ranges of one LTX file, 128 in flight
// (an index build's concurrency), from nginx over loopback, beside the
// same reads from the file backend: the cost of a request itself.
func BenchmarkRangedRead(b *testing.B) {
	root := b.TempDir()
	replicaSite(b, root)
	srv := nginxtest.Start(b, nginxtest.Config{Root: root})
	for name, c := range map[string]storage.Client{
		"nginx": open(b, srv.URL+"/replica", testOptions),
		"file":  file.New(filepath.Join(root, "replica")),
	} {
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(max(1, 128/runtime.GOMAXPROCS(0)))
			b.SetBytes(64)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rc, err := c.OpenLTXFile(context.Background(), 0, 1, 1, 10, 64)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, rc); err != nil {
						b.Fatal(err)
					}
					rc.Close()
				}
			})
		})
	}
}
