package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
)

// TestZeroL0Retention: `-l0-retention 0s -manifest-grace 0s`, and
// `l0-retention: 0s` with `manifest-grace: 0s` in a config file, keep no
// L0 file past its compaction (not the 5-minute defaults), while a
// database left to the flag's 1h keeps them all, and one with
// `l0-retention: 0s` alone keeps those that manifests named (the 5-minute
// manifest grace).
func TestZeroL0Retention(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]string{}
	replicas := map[string]storage.Client{}
	for _, name := range []string{"flag", "config", "kept", "graced"} {
		paths[name] = filepath.Join(dir, name+".db")
		replicas[name] = file.New(filepath.Join(dir, "replica-"+name))
	}
	cfg := writeConfig(t, dir, `
databases:
  - path: config.db
    replica: `+replicas["config"].String()+`
    l0-retention: 0s
    manifest-grace: 0s
  - path: kept.db
    replica: `+replicas["kept"].String()+`
  - path: graced.db
    replica: `+replicas["graced"].String()+`
    l0-retention: 0s
`)
	common := []string{"-sync-interval", "10ms", "-compaction-intervals", "20ms", "-snapshot-interval", "1h"}
	runs := [][]string{
		append([]string{"replicate", "-db", paths["flag"], "-replica", replicas["flag"].String(), "-l0-retention", "0s", "-manifest-grace", "0s"}, common...),
		append([]string{"replicate", "-config", cfg, "-l0-retention", "1h"}, common...),
	}
	dbs := map[string]func(int){}
	for name, path := range paths {
		db := openDB(t, path)
		dbs[name] = func(n int) { addRows(t, db, n) }
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderrs := make([]*syncBuffer, len(runs))
	done := make(chan int, len(runs))
	for i, args := range runs {
		stderrs[i] = &syncBuffer{}
		go func() { done <- run(ctx, args, &syncBuffer{}, stderrs[i]) }()
	}
	list := func(name string) []*ltx.FileInfo {
		files, err := storage.ListLevel(context.Background(), replicas[name], 0, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	l0 := func(name string) int { return len(list(name)) }
	// Writes until the databases that keep their L0 files have several:
	// the others had as many.
	for i := 0; i < 200 && (l0("kept") < 4 || l0("graced") < 4); i++ {
		for _, add := range dbs {
			add(2)
		}
		time.Sleep(30 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if l0("flag") == 1 && l0("config") == 1 {
			break
		}
	}
	kept, graced := list("kept"), list("graced")
	cancel()
	for range runs {
		if code := <-done; code != 0 {
			t.Fatalf("replicate exited %d: %s%s", code, stderrs[0], stderrs[1])
		}
	}
	for _, name := range []string{"flag", "config"} {
		if n := l0(name); n > 2 { // the newest, and the final sync's
			t.Errorf("-l0-retention 0s given by %s: %d L0 files left, want the newest only", name, n)
		}
	}
	if len(kept) < 4 || kept[0].MinTXID != 1 || kept[len(kept)-1].MaxTXID != ltx.TXID(len(kept)) {
		t.Errorf("a database with 1h L0 retention kept %d L0 files; want one for every TXID (4 or more)", len(kept))
	}
	if len(graced) < 4 || graced[0].MinTXID != 1 || graced[len(graced)-1].MaxTXID != ltx.TXID(len(graced)) {
		t.Errorf("a database with no L0 retention but the default manifest grace kept %d L0 files; want those its manifests named (4 or more, from TXID 1)", len(graced))
	}
	for name, path := range paths {
		out := filepath.Join(dir, name+"-restored.db")
		if code, _, se := runCmd(t, "restore", "-replica", replicas[name].String(), "-o", out); code != 0 {
			t.Fatalf("restore %s: %s", name, se)
		}
		if rowsOf(t, out) != rowsOf(t, path) {
			t.Fatalf("database %s restored differently", name)
		}
	}
}
