package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
)

// envAsMain makes this test binary run as ltx-writer itself (main, with
// its arguments): tests start it as a child process (startWriter).
const envAsMain = "LTX_WRITER_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envAsMain) == "1" {
		main()
	}
	// What replicate reads with no -config and no -db must not depend on
	// the machine: no /etc/litestream.yml, no Litestream variables.
	dir, err := os.MkdirTemp("", "ltx-writer-test-*")
	if err != nil {
		panic(err)
	}
	defaultConfigPath = filepath.Join(dir, "litestream.yml")
	for _, v := range []string{"LITESTREAM_CONFIG", "LITESTREAM_ACCESS_KEY_ID", "LITESTREAM_SECRET_ACCESS_KEY", "LOG_LEVEL"} {
		os.Unsetenv(v)
	}
	code := s3test.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}
