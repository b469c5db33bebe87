package vfs

import (
	"os"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
)

func TestMain(m *testing.M) {
	code := s3test.Run(m)
	for _, src := range []*source{bench.src, statsShared.src} {
		if src != nil {
			src.db.Close()
		}
	}
	for _, dir := range bench.dirs {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}
