package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Litestream's config file, read as Litestream v0.5 reads it, so that a
// Litestream user switches writers by changing the binary's name. The keys
// and what becomes of each are in litestream_keys.go; replicas in
// litestream_replica.go; $VAR expansion in litestream_env.go.

// defaultConfigPath is the config `replicate` reads when given neither
// -config nor -db, as Litestream does; LITESTREAM_CONFIG overrides it.
var defaultConfigPath = "/etc/litestream.yml"

// lsConfig is the part of Litestream's Config that ltx-writer maps.
type lsConfig struct {
	LsReplicaSettings `yaml:",inline"` // defaults for every replica

	Addr        string      `yaml:"addr"`
	Levels      *[]lsLevel  `yaml:"levels"`
	Snapshot    lsSnapshot  `yaml:"snapshot"`
	L0Retention *duration   `yaml:"l0-retention"`
	Logging     lsLogging   `yaml:"logging"`
	DBs         []*lsDBConf `yaml:"dbs"`
}

type lsLevel struct {
	Interval duration `yaml:"interval"`
}

type lsSnapshot struct {
	Interval  *duration `yaml:"interval"`
	Retention *duration `yaml:"retention"`
}

type lsLogging struct {
	Level  string `yaml:"level"`
	Type   string `yaml:"type"`
	Stderr bool   `yaml:"stderr"`
	Source bool   `yaml:"source"`
}

// lsDBConf is one entry of dbs.
type lsDBConf struct {
	Path               string       `yaml:"path"`
	Snapshot           lsSnapshot   `yaml:"snapshot"`
	CheckpointInterval *duration    `yaml:"checkpoint-interval"`
	BusyTimeout        *duration    `yaml:"busy-timeout"`
	MinCheckpointPageN *int         `yaml:"min-checkpoint-page-count"`
	TruncatePageN      *int         `yaml:"truncate-page-n"`
	Replica            *lsReplica   `yaml:"replica"`
	Replicas           []*lsReplica `yaml:"replicas"`

	line int
}

func (db *lsDBConf) UnmarshalYAML(n *yaml.Node) error {
	type plain lsDBConf
	db.line = n.Line
	return n.Decode((*plain)(db))
}

// isLitestreamConfig tells Litestream's format from ltx-writer's own: a
// mapping with Litestream's keys (dbs:, addr:, ...) and neither of ours
// (databases:, metrics-addr:). Anything else goes to ltx-writer's parser,
// whose errors then apply.
func isLitestreamConfig(b []byte) bool {
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil {
		// Litestream parses the text once expanded: ${VAR} may be what
		// makes it YAML, as in a flow mapping {url: ${URL}}.
		if yaml.Unmarshal([]byte(os.ExpandEnv(string(b))), &doc) != nil {
			return false
		}
	}
	if len(doc.Content) == 0 {
		return false
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return false
	}
	top, litestream := topRules(), false
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i].Value
		if k == "databases" || k == "metrics-addr" {
			return false
		}
		if _, ok := top[k]; ok {
			litestream = true
		}
	}
	return litestream
}

// parseLitestreamConfig reads b, the Litestream config at path, into the
// databases to replicate.
func parseLitestreamConfig(path string, b []byte, expand bool) (*replicateConfig, error) {
	text := string(b)
	if expand {
		var err error
		if text, err = expandEnv(text); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("config %s: %s", path, strings.ReplaceAll(err.Error(), "yaml: ", ""))
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("config %s: empty: it needs a dbs list", path)
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config %s: line %d: want a mapping of keys (dbs: ...)", path, root.Line)
	}
	var walk keyWalk
	if err := walk.mapping(root, topRules(), ""); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var c lsConfig
	if err := root.Decode(&c); err != nil {
		msg := strings.ReplaceAll(err.Error(), "yaml: ", "")
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msg = strings.Join(te.Errors, "; ")
		}
		return nil, fmt.Errorf("config %s: %s", path, msg)
	}
	cfg, err := c.convert()
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.warnings = append(walk.warnings, cfg.warnings...)
	return cfg, nil
}

// convert maps the config onto ltx-writer's: Litestream's global settings
// (levels, snapshot, l0-retention) go to every database.
func (c *lsConfig) convert() (*replicateConfig, error) {
	if len(c.DBs) == 0 {
		return nil, errors.New("no databases listed under dbs")
	}
	var levels []duration
	if c.Levels != nil {
		if len(*c.Levels) > 8 {
			return nil, fmt.Errorf("levels: %d given, at most 8 (L1..L8) fit below the snapshot level", len(*c.Levels))
		}
		levels = make([]duration, len(*c.Levels))
		for i, l := range *c.Levels {
			if l.Interval <= 0 {
				return nil, fmt.Errorf("levels[%d].interval %s: must be positive", i, time.Duration(l.Interval))
			}
			levels[i] = l.Interval
		}
	}
	snapshot, err := c.snapshot()
	if err != nil {
		return nil, err
	}
	if c.L0Retention != nil && *c.L0Retention < 0 {
		return nil, fmt.Errorf("l0-retention %s: must not be negative", time.Duration(*c.L0Retention))
	}
	cfg := &replicateConfig{MetricsAddr: c.Addr, logging: &c.Logging}
	paths, replicas := map[string]string{}, map[string]string{}
	for i, db := range c.DBs {
		where := fmt.Sprintf("line %d: dbs[%d]", db.line, i)
		if db.Path == "" {
			return nil, fmt.Errorf("%s: missing path (the database file)", where)
		}
		p, err := expandPath(stripSQLitePrefix(db.Path))
		if err != nil {
			return nil, fmt.Errorf("%s: path: %w", where, err)
		}
		where = fmt.Sprintf("line %d: database %s", db.line, p)
		d, err := db.convert(p, &c.LsReplicaSettings)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		for _, q := range db.replica().ignored {
			cfg.warnings = append(cfg.warnings, warning{db.replica().line, fmt.Sprintf("dbs[%d].replica.url ?%s", i, q),
				"ltx-writer reads only endpoint, region and forcePathStyle from a url"})
		}
		d.CompactionIntervals = levels
		d.SnapshotInterval, d.SnapshotRetention = snapshot.Interval, snapshot.Retention
		d.L0Retention = c.L0Retention
		if other, dup := paths[p]; dup {
			return nil, fmt.Errorf("%s: listed twice (%s)", where, other)
		}
		if other, dup := replicas[d.Replica]; dup {
			return nil, fmt.Errorf("%s: its replica is %s's too", where, other)
		}
		paths[p], replicas[d.Replica] = fmt.Sprintf("dbs[%d]", i), p
		cfg.Databases = append(cfg.Databases, *d)
	}
	return cfg, nil
}

// snapshot is the snapshot setting of every database. As in Litestream
// (v0.5.12), a database's snapshot block counts for all databases unless
// the top-level one sets that field, and two databases must not differ.
func (c *lsConfig) snapshot() (lsSnapshot, error) {
	var fromDBs lsSnapshot
	var intervalDB, retentionDB *lsDBConf
	for _, db := range c.DBs {
		for _, d := range []*duration{db.Snapshot.Interval, db.Snapshot.Retention} {
			if d != nil && *d <= 0 {
				return lsSnapshot{}, fmt.Errorf("line %d: database %s: snapshot: %s must be positive", db.line, db.Path, time.Duration(*d))
			}
		}
		if v := db.Snapshot.Interval; v != nil {
			if intervalDB != nil && *fromDBs.Interval != *v {
				return lsSnapshot{}, fmt.Errorf("conflicting database snapshot intervals: %s has %s, %s has %s (snapshot settings are global)",
					intervalDB.Path, time.Duration(*fromDBs.Interval), db.Path, time.Duration(*v))
			}
			fromDBs.Interval, intervalDB = v, db
		}
		if v := db.Snapshot.Retention; v != nil {
			if retentionDB != nil && *fromDBs.Retention != *v {
				return lsSnapshot{}, fmt.Errorf("conflicting database snapshot retentions: %s has %s, %s has %s (snapshot settings are global)",
					retentionDB.Path, time.Duration(*fromDBs.Retention), db.Path, time.Duration(*v))
			}
			fromDBs.Retention, retentionDB = v, db
		}
	}
	s := c.Snapshot
	if s.Interval == nil {
		s.Interval = fromDBs.Interval
	}
	if s.Retention == nil {
		s.Retention = fromDBs.Retention
	}
	if d := s.Interval; d != nil && *d <= 0 {
		return s, fmt.Errorf("snapshot.interval %s: must be positive", time.Duration(*d))
	}
	if d := s.Retention; d != nil && *d <= 0 {
		return s, fmt.Errorf("snapshot.retention %s: must be positive", time.Duration(*d))
	}
	return s, nil
}

// convert maps one database, at its absolute path p, with the top level's
// replica settings as defaults.
func (db *lsDBConf) convert(p string, defaults *LsReplicaSettings) (*databaseConfig, error) {
	switch {
	case db.Replica == nil && len(db.Replicas) == 0:
		return nil, errors.New("no replica: give one under replica:")
	case db.Replica != nil && len(db.Replicas) > 0:
		return nil, errors.New("both replica: and replicas: given; keep one")
	case len(db.Replicas) > 1:
		return nil, fmt.Errorf("%d replicas: one per database, as in Litestream v0.5; run a second ltx-writer for a second replica", len(db.Replicas))
	}
	rep := db.replica()
	rep.setDefaults(defaults)
	d := &databaseConfig{Path: p, SyncInterval: rep.SyncInterval}
	var err error
	if d.Replica, d.credentials, err = rep.open(); err != nil {
		return nil, err
	}
	if d.SyncInterval != nil && *d.SyncInterval <= 0 {
		return nil, fmt.Errorf("replica sync-interval %s: must be positive", time.Duration(*d.SyncInterval))
	}
	if v := db.CheckpointInterval; v != nil {
		d.CheckpointInterval = v
		if *v <= 0 {
			d.CheckpointInterval = ptr(duration(-1)) // Litestream: off
		}
	}
	if v := db.BusyTimeout; v != nil {
		if *v <= 0 {
			return nil, fmt.Errorf("busy-timeout %s: must be positive", time.Duration(*v))
		}
		d.busyTimeout = v
	}
	if v := db.MinCheckpointPageN; v != nil {
		if *v <= 0 {
			return nil, fmt.Errorf("min-checkpoint-page-count %d: must be positive", *v)
		}
		d.CheckpointPages = v
	}
	// Litestream's source (effectiveTruncatePageN) takes 0 for its
	// default and a negative value for never.
	if v := db.TruncatePageN; v != nil && *v != 0 {
		d.TruncatePages = ptr(max(*v, -1))
	}
	if db.MinCheckpointPageN != nil && d.TruncatePages != nil && *d.TruncatePages > 0 && *d.TruncatePages < *db.MinCheckpointPageN {
		return nil, fmt.Errorf("truncate-page-n %d: must not be below min-checkpoint-page-count %d", *d.TruncatePages, *db.MinCheckpointPageN)
	}
	return d, nil
}

// replica is the database's one replica, given as replica: or as the one
// entry of replicas:.
func (db *lsDBConf) replica() *lsReplica {
	if db.Replica != nil {
		return db.Replica
	}
	return db.Replicas[0]
}

func ptr[T any](v T) *T { return &v }

// expandPath makes p absolute as Litestream does: ~/ is the home
// directory, a relative path is relative to the working directory (not to
// the config file, as in ltx-writer's own format).
func expandPath(p string) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~"+string(filepath.Separator)) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("expand %s: %w", p, err)
		}
		p = filepath.Join(home, p[1:])
	}
	return filepath.Abs(p)
}

// stripSQLitePrefix drops the sqlite:// or sqlite3:// that Litestream
// (v0.5.3) allows before a database path, for a DATABASE_URL shared with
// other tools.
func stripSQLitePrefix(p string) string {
	for _, prefix := range []string{"sqlite3://", "sqlite://"} {
		if strings.HasPrefix(p, prefix) {
			return strings.TrimPrefix(p, prefix)
		}
	}
	return p
}

// logHandler is where `replicate` logs with a Litestream config: on stdout
// unless logging.stderr, as text or JSON (Litestream's "pretty" is text),
// at logging.level unless LOG_LEVEL (as in Litestream) or -log-level
// (flagLevel, when given) says otherwise.
func (l *lsLogging) logHandler(flagLevel string, stdout, stderr io.Writer) (slog.Handler, error) {
	name, what := l.Level, "logging.level"
	if v := os.Getenv("LOG_LEVEL"); v != "" {
		name, what = v, "LOG_LEVEL"
	}
	if flagLevel != "" {
		name, what = flagLevel, "-log-level"
	}
	level, err := parseLogLevel(name)
	if err != nil {
		return nil, fmt.Errorf("%s %q: want trace, debug, info, warn or error", what, name)
	}
	opts := &slog.HandlerOptions{Level: level, AddSource: l.Source}
	w := stdout
	if l.Stderr {
		w = stderr
	}
	switch strings.ToLower(l.Type) {
	case "json":
		return slog.NewJSONHandler(w, opts), nil
	case "", "text", "pretty":
		return slog.NewTextHandler(w, opts), nil
	}
	return nil, fmt.Errorf("logging.type %q: want text, json or pretty", l.Type)
}

// parseLogLevel reads a level as Litestream names them (any case; empty
// is info).
func parseLogLevel(name string) (slog.Level, error) {
	switch strings.ToLower(name) {
	case "":
		return slog.LevelInfo, nil
	case "trace":
		return slog.LevelDebug - 4, nil
	case "warning":
		return slog.LevelWarn, nil
	}
	var level slog.Level
	err := level.UnmarshalText([]byte(name))
	return level, err
}

// defaultConfig is the config `replicate` reads when given neither -config
// nor -db, as Litestream does: $LITESTREAM_CONFIG, else /etc/litestream.yml
// if it exists ("" if not).
func defaultConfig() string {
	if v := os.Getenv("LITESTREAM_CONFIG"); v != "" {
		return v
	}
	if _, err := os.Stat(defaultConfigPath); err == nil {
		return defaultConfigPath
	}
	return ""
}

// flagValue is the value of a flag given on the command line, "" if it
// was not.
func flagValue(fs *flag.FlagSet, name string) string {
	v := ""
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			v = f.Value.String()
		}
	})
	return v
}
