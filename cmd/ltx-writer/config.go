package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"gopkg.in/yaml.v3"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/writer"
)

// replicateConfig is the YAML file of `ltx-writer replicate -config`:
//
//	metrics-addr: 127.0.0.1:9090   # optional
//	databases:
//	  - path: /data/app.db
//	    replica: s3://bucket/app
//	    sync-interval: 1s           # every setting below is optional
//	    compaction-intervals: [30s, 5m, 1h]
//	    snapshot-interval: 24h
//	    snapshot-retention: 24h
//	    l0-retention: 5m
//	    checkpoint-pages: 1000
//	    truncate-pages: 10000
//	    checkpoint-interval: 1m
//	    checksums: false
//	    no-manifest: false
//	    manifest-grace: 5m
//
// Settings missing from a database come from the command line's flags.
type replicateConfig struct {
	MetricsAddr string           `yaml:"metrics-addr"`
	Databases   []databaseConfig `yaml:"databases"`

	// Litestream's config only (litestream.go): its logging block, and
	// the keys ignored, for the log.
	logging  *lsLogging
	warnings []warning
}

// databaseConfig is one database to replicate. Pointers tell a setting
// left out (the flag's value applies) from one given.
type databaseConfig struct {
	Path    string `yaml:"path"`
	Replica string `yaml:"replica"`

	SyncInterval        *duration  `yaml:"sync-interval"`
	CompactionIntervals []duration `yaml:"compaction-intervals"`
	SnapshotInterval    *duration  `yaml:"snapshot-interval"`
	SnapshotRetention   *duration  `yaml:"snapshot-retention"`
	L0Retention         *duration  `yaml:"l0-retention"`
	CheckpointPages     *int       `yaml:"checkpoint-pages"`
	TruncatePages       *int       `yaml:"truncate-pages"`
	CheckpointInterval  *duration  `yaml:"checkpoint-interval"`
	Checksums           *bool      `yaml:"checksums"`
	NoManifest          *bool      `yaml:"no-manifest"`
	ManifestGrace       *duration  `yaml:"manifest-grace"`

	// Litestream's config only (litestream.go): the S3 credentials it
	// gives, and its busy-timeout.
	credentials aws.CredentialsProvider
	busyTimeout *duration
}

// duration is a time.Duration written as Go writes it ("30s", "5m").
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (like 30s, 5m or 1h)", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

// loadConfig reads and checks a config file, in ltx-writer's format or
// Litestream's (expandEnv: with $VAR expanded, as Litestream does). Unknown
// keys are errors, so that a misspelled setting is not silently ignored.
func loadConfig(path string, expandEnv bool) (*replicateConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if isLitestreamConfig(b) {
		return parseLitestreamConfig(path, b, expandEnv)
	}
	return parseConfig(path, b)
}

// parseConfig checks the content b of the config file at path.
func parseConfig(path string, b []byte) (*replicateConfig, error) {
	var cfg replicateConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: empty: it needs a databases list", path)
		}
		msg := strings.ReplaceAll(err.Error(), "yaml: ", "")
		if te, ok := err.(*yaml.TypeError); ok {
			msg = strings.Join(te.Errors, "; ") // one line, as every user error
		}
		return nil, fmt.Errorf("config %s: %s", path, msg)
	}
	if len(cfg.Databases) == 0 {
		return nil, fmt.Errorf("config %s: no databases listed", path)
	}
	dir := filepath.Dir(path)
	paths := map[string]bool{}
	replicas := map[string]bool{}
	for i := range cfg.Databases {
		db := &cfg.Databases[i]
		switch {
		case db.Path == "":
			return nil, fmt.Errorf("config %s: database %d has no path", path, i+1)
		case db.Replica == "":
			return nil, fmt.Errorf("config %s: database %s has no replica", path, db.Path)
		}
		// Relative paths are relative to the config file, as a reader of
		// the file would expect.
		if !filepath.IsAbs(db.Path) {
			db.Path = filepath.Join(dir, db.Path)
		}
		if paths[db.Path] {
			return nil, fmt.Errorf("config %s: database %s is listed twice", path, db.Path)
		}
		if replicas[db.Replica] {
			return nil, fmt.Errorf("config %s: replica %s is given to two databases", path, storage.Shown(db.Replica))
		}
		paths[db.Path], replicas[db.Replica] = true, true
		if err := db.check(); err != nil {
			return nil, fmt.Errorf("config %s: database %s: %w", path, db.Path, err)
		}
	}
	return &cfg, nil
}

// check refuses the settings the command line refuses too, so that a
// typo such as a negative sync-interval does not silently turn off
// replicating.
func (db *databaseConfig) check() error {
	switch {
	case db.SyncInterval != nil && *db.SyncInterval <= 0:
		return fmt.Errorf("sync-interval %s: must be positive", time.Duration(*db.SyncInterval))
	case len(db.CompactionIntervals) > 8:
		return fmt.Errorf("compaction-intervals: %d levels given, at most 8", len(db.CompactionIntervals))
	case db.L0Retention != nil && *db.L0Retention < 0:
		return fmt.Errorf("l0-retention %s: must not be negative", time.Duration(*db.L0Retention))
	case db.ManifestGrace != nil && *db.ManifestGrace < 0:
		return fmt.Errorf("manifest-grace %s: must not be negative", time.Duration(*db.ManifestGrace))
	case db.CheckpointPages != nil && *db.CheckpointPages <= 0:
		return fmt.Errorf("checkpoint-pages %d: must be positive", *db.CheckpointPages)
	case db.TruncatePages != nil && (*db.TruncatePages == 0 || *db.TruncatePages < -1):
		return fmt.Errorf("truncate-pages %d: must be positive, or -1 for never", *db.TruncatePages)
	}
	for _, d := range db.CompactionIntervals {
		if d <= 0 {
			return fmt.Errorf("compaction-intervals: %s is not a positive duration", time.Duration(d))
		}
	}
	return nil
}

// writerL0Retention is the writer's L0Retention for the -l0-retention given:
// zero there means none, where zero in writer.Options means the default.
func writerL0Retention(d time.Duration) time.Duration {
	if d == 0 {
		return writer.NoL0Retention
	}
	return d
}

// writerManifestGrace is the writer's ManifestGrace for the
// -manifest-grace given: zero there means none, where zero in
// writer.Options means the default.
func writerManifestGrace(d time.Duration) time.Duration {
	if d == 0 {
		return writer.NoManifestGrace
	}
	return d
}

// options applies a database's settings over the flags' options.
func (db *databaseConfig) options(base writer.Options) writer.Options {
	o := base
	if db.SyncInterval != nil {
		o.SyncInterval = time.Duration(*db.SyncInterval)
	}
	if db.CompactionIntervals != nil {
		o.CompactionIntervals = make([]time.Duration, len(db.CompactionIntervals))
		for i, d := range db.CompactionIntervals {
			o.CompactionIntervals[i] = time.Duration(d)
		}
	}
	if db.SnapshotInterval != nil {
		o.SnapshotInterval = time.Duration(*db.SnapshotInterval)
	}
	if db.SnapshotRetention != nil {
		o.SnapshotRetention = time.Duration(*db.SnapshotRetention)
	}
	if db.L0Retention != nil {
		o.L0Retention = writerL0Retention(time.Duration(*db.L0Retention))
	}
	if db.CheckpointPages != nil {
		o.MinCheckpointPages = *db.CheckpointPages
	}
	if db.TruncatePages != nil {
		o.TruncatePages = *db.TruncatePages
	}
	if db.CheckpointInterval != nil {
		o.CheckpointInterval = time.Duration(*db.CheckpointInterval)
	}
	if db.Checksums != nil {
		o.Checksums = *db.Checksums
	}
	if db.NoManifest != nil {
		o.NoManifest = *db.NoManifest
	}
	if db.ManifestGrace != nil {
		o.ManifestGrace = writerManifestGrace(time.Duration(*db.ManifestGrace))
	}
	if db.busyTimeout != nil {
		o.BusyTimeout = time.Duration(*db.busyTimeout)
	}
	return o
}
