// Command gen regenerates the Litestream-layout fixture in
// testdata/litestream from internal/fixture/generate:
//
//	go run ./testdata/gen
//
// It builds the new tree beside the old one and swaps it in only once it is
// complete.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ltxvfs/ltxvfs/internal/fixture"
	"github.com/ltxvfs/ltxvfs/internal/fixture/generate"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := fixture.Dir()
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".litestream-new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
		return err
	}
	m, err := generate.Generate(tmp)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	fmt.Printf("wrote %s: %d LTX files (%d bytes), %d foreign files, %d TXIDs\n", dir, len(m.Files), size, len(m.Foreign), len(m.States))
	return nil
}
