package file_test

import (
	"testing"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

func TestContract(t *testing.T) {
	storagetest.RunContract(t, func(t *testing.T) storage.Client {
		return file.New(t.TempDir())
	})
}
