package writer_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
)

// ltxName matches a file name in an error.
var ltxName = regexp.MustCompile(`[0-9a-f]{16}-[0-9a-f]{16}\.ltx`)

// damages change bytes of an LTX file in place, keeping its size: in the
// header, in the page block (its compressed frames) and in the trailer.
var damages = []struct {
	name string
	fn   func(b []byte)
}{
	{"header timestamp", func(b []byte) { b[36] ^= 0x5a }},
	{"header TXID", func(b []byte) { b[23] ^= 0x01 }},
	{"first page", func(b []byte) { b[ltx.HeaderSize+ltx.PageHeaderSize+8] ^= 0xff }},
	{"page block, 1/3", func(b []byte) { b[len(b)/3] ^= 0x10 }},
	{"page block, 2/3", func(b []byte) { copy(b[2*len(b)/3:], "QUICK") }},
	{"file checksum", func(b []byte) { b[len(b)-1] ^= 0xff }},
}

// TestRestoreNamesTheDamagedFile damages a middle L0 file of a replica in
// place (same size) and restores across it: the error names that file and
// no other, whatever was damaged, and no file is left behind. A compaction
// across it names it too.
func TestRestoreNamesTheDamagedFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	r := newReplicator(t, path, c, testOpts())
	defer r.Close(ctx)
	for r.TXID() < 8 {
		insert(t, app, 30)
		mustSync(t, r)
	}
	name := storage.FileName(0, 7, 7)
	file := storage.FilePath(c.Root(), 0, 7, 7)
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range damages {
		b := append([]byte(nil), orig...)
		d.fn(b)
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, "restored.db")
		_, err := restore.Run(ctx, c, dst, restore.Options{TXID: 8})
		checkNamesOnly(t, d.name, err, name)
		if _, serr := os.Stat(dst); !os.IsNotExist(serr) {
			t.Errorf("%s: a failed restore left %s", d.name, dst)
		}
		if i == len(damages)-1 {
			t.Logf("%s: %v", d.name, err)
		}
	}
	// A compaction over it names it too.
	if _, err := r.Compact(ctx, 1); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("compaction over the damaged %s: %v", name, err)
	}
	if err := os.WriteFile(file, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := restoreDump(t, c, restore.Options{TXID: 8}); got == "" {
		t.Fatal("the undamaged replica restores to no rows")
	}
}

// checkNamesOnly fails unless err names the file want (a path ending in
// it) and no other LTX file.
func checkNamesOnly(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: restore succeeded", what)
		return
	}
	msg := err.Error()
	if !regexp.MustCompile(regexp.QuoteMeta(want) + `\b`).MatchString(msg) {
		t.Errorf("%s: the error does not name %s: %v", what, want, err)
	}
	for _, n := range ltxName.FindAllString(msg, -1) {
		if n != filepath.Base(want) {
			t.Errorf("%s: the error names %s besides %s: %v", what, n, want, err)
		}
	}
}
