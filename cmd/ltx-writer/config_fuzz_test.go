package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/fuzzseed"
)

// FuzzConfig feeds arbitrary bytes to `replicate -config` as the YAML
// file. Properties: never a panic; an error names the file; a config that
// loads lists at least one database, each with an absolute path and a
// replica, no path or replica twice.
func FuzzConfig(f *testing.F) {
	fuzzseed.Write(f, []fuzzseed.Seed{
		fuzzseed.New("one", []byte("databases:\n  - path: a.db\n    replica: /r\n")),
		fuzzseed.New("full", []byte("metrics-addr: 127.0.0.1:9090\ndatabases:\n  - path: /data/app.db\n    replica: s3://bucket/app?endpoint=localhost:9000\n    sync-interval: 1s\n    compaction-intervals: [30s, 5m, 1h]\n    snapshot-interval: 24h\n    snapshot-retention: 24h\n    l0-retention: 5m\n    checkpoint-pages: 1000\n    truncate-pages: 10000\n    checkpoint-interval: 1m\n    checksums: false\n  - path: b.db\n    replica: file:///r/b\n")),
		fuzzseed.New("empty", []byte("")),
		fuzzseed.New("unknown-key", []byte("databases:\n  - path: a.db\n    replica: /r\n    sync-intervall: 1s\n")),
		fuzzseed.New("bad-duration", []byte("databases:\n  - path: a.db\n    replica: /r\n    sync-interval: soon\n")),
		fuzzseed.New("no-path", []byte("databases:\n  - replica: /r\n")),
		fuzzseed.New("no-replica", []byte("databases:\n  - path: a.db\n")),
		fuzzseed.New("twice", []byte("databases:\n  - path: a.db\n    replica: /r1\n  - path: ./a.db\n    replica: /r2\n")),
		fuzzseed.New("anchors", []byte("x: &a [*a]\ndatabases: *a\n")),
		fuzzseed.New("flow", []byte("{databases: [{path: a.db, replica: /r, compaction-intervals: [1s, -1s]}]}")),
		fuzzseed.New("not-yaml", []byte("databases: [oops")),
		fuzzseed.New("tab", []byte("databases:\n\t- path: a.db\n")),
	})
	// The file is not written: loadConfig reads it and hands the bytes to
	// parseConfig, and a disk write per input would cost more than parsing.
	path := filepath.Join(f.TempDir(), "ltx-writer.yaml")
	f.Fuzz(func(t *testing.T, content []byte) {
		cfg, err := parseConfig(path, content)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name %s: %v", path, err)
			}
			return
		}
		if len(cfg.Databases) == 0 {
			t.Fatal("a config without databases loaded")
		}
		paths, replicas := map[string]bool{}, map[string]bool{}
		for _, db := range cfg.Databases {
			if !filepath.IsAbs(db.Path) || db.Replica == "" {
				t.Fatalf("database %q (replica %q) loaded", db.Path, db.Replica)
			}
			if paths[db.Path] || replicas[db.Replica] {
				t.Fatalf("database %q or replica %q loaded twice", db.Path, db.Replica)
			}
			paths[db.Path], replicas[db.Replica] = true, true
		}
	})
}
