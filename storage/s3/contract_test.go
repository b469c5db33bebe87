package s3_test

import (
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// TestContract runs the shared backend contract against a real S3 server.
func TestContract(t *testing.T) { s3test.ForEach(t, testContract) }

func testContract(t *testing.T, srv *s3test.Server) {
	storagetest.RunContract(t, func(t *testing.T) storage.Client {
		return srv.NewReplica(t).Client
	})
}
