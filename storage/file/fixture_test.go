package file_test

import (
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/fixture"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// TestLitestreamFixture reads a replica laid out by Litestream v0.5's file
// backend, foreign files included.
func TestLitestreamFixture(t *testing.T) {
	dir := t.TempDir()
	m, err := fixture.Copy(dir)
	if err != nil {
		t.Fatal(err)
	}
	storagetest.CheckLitestreamFixture(t, file.New(dir), m)
}
