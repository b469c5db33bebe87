package vfs

import (
	"os"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
)

func TestMain(m *testing.M) {
	code := s3test.Run(m)
	if bench.src != nil {
		bench.src.db.Close()
	}
	for _, dir := range bench.dirs {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}
