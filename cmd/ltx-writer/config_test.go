package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
)

func writeConfig(t *testing.T, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, "ltx-writer.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		yaml string
		want string
	}{
		{"", "empty"},
		{"databases: []", "no databases"},
		{"databases:\n  - path: a.db\n    replica: /r\n    sync-intervall: 1s\n", "sync-intervall"},
		{"databses:\n  - path: a.db\n", "databses"},
		{"databases:\n  - path: a.db\n    replica: /r\n    sync-interval: soon\n", `"soon"`},
		{"databases:\n  - path: a.db\n    replica: /r\n    checkpoint-pages: many\n", "many"},
		{"databases:\n  - replica: /r\n", "database 1 has no path"},
		{"databases:\n  - path: a.db\n", "has no replica"},
		{"databases:\n  - path: a.db\n    replica: /r1\n  - path: a.db\n    replica: /r2\n", "listed twice"},
		{"databases:\n  - path: a.db\n    replica: /r\n  - path: b.db\n    replica: /r\n", "two databases"},
		{"databases: [oops", "ltx-writer.yaml"},
	} {
		path := writeConfig(t, dir, tc.yaml)
		code, _, stderr := runCmd(t, "replicate", "-config", path)
		if code == 0 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "ltx-writer.yaml") {
			t.Errorf("config %q: exit %d, %q; want an error naming %s and the file", tc.yaml, code, stderr, tc.want)
		}
	}
	// A typo in a replica URL of the config names the database and URL.
	path := writeConfig(t, dir, "databases:\n  - path: a.db\n    replica: sftp://bucket/x\n")
	openDB(t, filepath.Join(dir, "a.db"))
	if code, _, stderr := runCmd(t, "replicate", "-config", path); code == 0 || !strings.Contains(stderr, "sftp://bucket/x") {
		t.Errorf("bad replica URL in config: exit %d, %q", code, stderr)
	}
}

// TestConfigSeveralDatabases replicates two databases from one config file,
// with settings per database over the flags.
func TestConfigSeveralDatabases(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	a, b := openDB(t, filepath.Join(dir, "a.db")), openDB(t, filepath.Join(dir, "b.db"))
	cfg := writeConfig(t, dir, `
databases:
  - path: a.db
    replica: replica-a
    sync-interval: 10ms
    compaction-intervals: [20ms]
  - path: `+filepath.Join(dir, "b.db")+`
    replica: file://`+filepath.Join(dir, "replica-b")+`
    sync-interval: 10ms
    compaction-intervals: []
`)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"replicate", "-config", cfg, "-snapshot-interval", "1h"}, &stdout, &stderr)
	}()
	addRows(t, a, 5)
	addRows(t, b, 7)
	time.Sleep(300 * time.Millisecond)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("replicate -config exited %d: %s", code, stderr.String())
	}
	// The relative replica path is relative to the working directory, as
	// every replica URL is; the database path to the config file.
	ra := file.New(filepath.Join(dir, "replica-a"))
	rb := file.New(filepath.Join(dir, "replica-b"))
	for name, c := range map[string]storage.Client{"a": ra, "b": rb} {
		out := filepath.Join(dir, name+"-restored.db")
		if code, _, se := runCmd(t, "restore", "-replica", c.String(), "-o", out); code != 0 {
			t.Fatalf("restore %s: %s", name, se)
		}
		if rowsOf(t, out) != rowsOf(t, filepath.Join(dir, name+".db")) {
			t.Fatalf("database %s restored differently", name)
		}
	}
	l1a, _ := storage.ListLevel(context.Background(), ra, 1, 0, false)
	l1b, _ := storage.ListLevel(context.Background(), rb, 1, 0, false)
	if len(l1a) == 0 || len(l1b) != 0 {
		t.Fatalf("per-database compaction settings not applied: L1 files %d (want some) and %d (want none)", len(l1a), len(l1b))
	}
}
