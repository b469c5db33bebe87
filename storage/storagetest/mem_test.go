package storagetest

import (
	"testing"

	"github.com/ltxvfs/ltxvfs/storage"
)

func TestMemContract(t *testing.T) {
	RunContract(t, func(t *testing.T) storage.Client { return NewMem() })
}
