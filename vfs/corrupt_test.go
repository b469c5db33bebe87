package vfs

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// A damaged LTX file is an error that names it, from open or from the
// query that reads it; never wrong rows.
func TestCorruptFileIsANamedError(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-30] }},
		{"page frames overwritten", func(b []byte) []byte {
			for i := ltx.HeaderSize; i < ltx.HeaderSize+64; i++ {
				b[i] ^= 0x5a
			}
			return b
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(t, 4096)
			src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
			last := src.exec(`INSERT INTO t(id, v) SELECT value, 'v' FROM generate_series(1, 500)`)
			path := storage.FilePath(src.dir, 0, last, last)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			db := src.open()
			var n int64
			err = db.QueryRowContext(context.Background(), `SELECT count(*) FROM t WHERE v = 'v'`).Scan(&n)
			if err == nil {
				t.Fatalf("read %d rows from a damaged file, want an error", n)
			}
			t.Log(err)
			if name := ltx.FormatFilename(last, last); !strings.Contains(err.Error(), name) {
				t.Fatalf("error %q does not name %s", err, name)
			}
		})
	}
}
