package mem_test

import (
	"testing"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/mem"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

func TestMemContract(t *testing.T) {
	storagetest.RunContract(t, func(t *testing.T) storage.Client { return mem.New() })
}
