package vfs

import (
	"os"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
)

func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }
