package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	_ "github.com/ltxvfs/ltxvfs/storage/file" // file:// and bare-path replicas
	_ "github.com/ltxvfs/ltxvfs/storage/s3"   // s3:// replicas
	"github.com/ltxvfs/ltxvfs/writer"
)

// shutdownTimeout bounds the final sync after SIGINT or SIGTERM.
const shutdownTimeout = 30 * time.Second

// runReplicate streams one database (-db, -replica) or every database of a
// config file into their replicas until SIGINT or SIGTERM, then makes a
// final sync and exits.
func runReplicate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("replicate", "-db PATH -replica URL [flags]  |  -config FILE [flags]", stderr)
	dbPath := fs.String("db", "", "SQLite database to replicate")
	replicaURL := fs.String("replica", "", "replica: a directory, file:///dir or s3://bucket/prefix")
	configPath := fs.String("config", "", "YAML file listing the databases to replicate (instead of -db and -replica): ltx-writer's format or Litestream's; default $LITESTREAM_CONFIG or "+defaultConfigPath+" when -db is not given either")
	noExpandEnv := fs.Bool("no-expand-env", false, "do not expand $VAR and ${VAR} in a Litestream config")
	syncInterval := fs.Duration("sync-interval", writer.DefaultSyncInterval, "how often the WAL is copied into an L0 file")
	compaction := fs.String("compaction-intervals", "30s,5m,1h", "how often L0 is compacted into L1, L1 into L2, ... (comma-separated; \"none\" for no compaction)")
	snapshotInterval := fs.Duration("snapshot-interval", writer.DefaultSnapshotInterval, "how often a snapshot is written")
	snapshotRetention := fs.Duration("snapshot-retention", writer.DefaultSnapshotRetention, "how long snapshots are kept (the newest always is)")
	l0Retention := fs.Duration("l0-retention", writer.DefaultL0Retention, "how long L0 files are kept once compacted into L1 or snapshotted (0s: deleted right after compaction)")
	checkpointPages := fs.Int("checkpoint-pages", writer.DefaultMinCheckpointPages, "WAL size, in pages, that triggers a PASSIVE checkpoint")
	truncatePages := fs.Int("truncate-pages", writer.DefaultTruncatePages, "WAL size, in pages, that triggers an emergency TRUNCATE checkpoint (-1: never)")
	checkpointInterval := fs.Duration("checkpoint-interval", writer.DefaultCheckpointInterval, "checkpoint a WAL with replicated changes at least this often")
	noManifest := fs.Bool("no-manifest", false, "publish no manifest (readers then list the replica, as they do a Litestream replica)")
	manifestGrace := fs.Duration("manifest-grace", writer.DefaultManifestGrace, "how long retention keeps the files a manifest named after a newer one replaced it (0s: not at all)")
	checksums := fs.Bool("checksums", false, "write rolling checksums into every file (checked by restore; Litestream v0.5 cannot restore such a replica)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics and read-your-writes tokens at http://ADDR/sync?db=PATH, e.g. 127.0.0.1:9090 (off if empty)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *configPath == "" && *dbPath == "" && *replicaURL == "" {
		*configPath = defaultConfig() // as Litestream does
	}
	switch {
	case *configPath != "" && (*dbPath != "" || *replicaURL != ""):
		return usagef("give -config or -db and -replica, not both")
	case *configPath == "" && (*dbPath == "" || *replicaURL == ""):
		return usagef("-db and -replica are required (or -config FILE; there is no %s)", defaultConfigPath)
	case *syncInterval <= 0:
		return usagef("-sync-interval %s: must be positive", *syncInterval)
	case *checkpointPages <= 0:
		return usagef("-checkpoint-pages %d: must be positive", *checkpointPages)
	case *truncatePages == 0 || *truncatePages < -1:
		return usagef("-truncate-pages %d: must be positive, or -1 for never", *truncatePages)
	case *truncatePages > 0 && *truncatePages < *checkpointPages:
		return usagef("-truncate-pages %d: must not be below -checkpoint-pages %d", *truncatePages, *checkpointPages)
	case *l0Retention < 0:
		return usagef("-l0-retention %s: must not be negative", *l0Retention)
	case *manifestGrace < 0:
		return usagef("-manifest-grace %s: must not be negative", *manifestGrace)
	}
	intervals, err := parseIntervals(*compaction)
	if err != nil {
		return usagef("-compaction-intervals: %v", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("-log-level %q: want debug, info, warn or error", *logLevel)
	}
	var cfg *replicateConfig
	if *configPath != "" {
		if cfg, err = loadConfig(*configPath, !*noExpandEnv); err != nil {
			return err
		}
	}
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if cfg != nil && cfg.logging != nil {
		if handler, err = cfg.logging.logHandler(flagValue(fs, "log-level"), stdout, stderr); err != nil {
			return fmt.Errorf("config %s: %w", *configPath, err)
		}
	}
	log := slog.New(handler)
	if cfg != nil {
		for _, w := range cfg.warnings {
			log.Warn("config key ignored", "config", *configPath, "line", w.line, "key", w.key, "reason", w.why)
		}
	}

	base := writer.Options{
		SyncInterval:        *syncInterval,
		CompactionIntervals: intervals,
		SnapshotInterval:    *snapshotInterval,
		SnapshotRetention:   *snapshotRetention,
		L0Retention:         writerL0Retention(*l0Retention),
		MinCheckpointPages:  *checkpointPages,
		TruncatePages:       *truncatePages,
		CheckpointInterval:  *checkpointInterval,
		Checksums:           *checksums,
		NoManifest:          *noManifest,
		ManifestGrace:       writerManifestGrace(*manifestGrace),
		Logger:              log,
	}
	dbs := []databaseConfig{{Path: *dbPath, Replica: *replicaURL}}
	if cfg != nil {
		dbs = cfg.Databases
		if *metricsAddr == "" {
			*metricsAddr = cfg.MetricsAddr
		}
		// The thresholds may come one from the file, one from a flag or
		// its default: check what the writer will get, before anything
		// starts, in the file's words.
		for _, db := range dbs {
			if o := db.options(base); o.TruncatePages > 0 && o.TruncatePages < o.MinCheckpointPages {
				return fmt.Errorf("config %s: database %s: truncate-pages %d: must not be below checkpoint-pages %d",
					*configPath, db.Path, o.TruncatePages, o.MinCheckpointPages)
			}
		}
	}

	reg := newRegistry()
	syncs := newSyncHandler(log)
	if *metricsAddr != "" {
		base.Registerer = reg
		srv, err := serveMetrics(*metricsAddr, reg, syncs, log)
		if err != nil {
			return err
		}
		defer srv.close()
	}
	var reps []*writer.Replicator
	stopAll := func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		var errs []error
		for _, r := range reps {
			if err := r.Close(sctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.Path(), err))
			}
		}
		return errors.Join(errs...)
	}
	for _, db := range dbs {
		client, err := db.openReplica(ctx)
		if err != nil {
			stopAll()
			return fmt.Errorf("database %s: %w", db.Path, err)
		}
		r, err := writer.New(db.Path, client, db.options(base))
		if err != nil {
			stopAll()
			return err
		}
		if err := r.Start(ctx); err != nil {
			r.Close(ctx)
			stopAll()
			return err
		}
		reps = append(reps, r)
		syncs.add(db.Path, r)
	}

	// Run until a signal (ctx) or until a replicator stops on its own (a
	// fatal error such as a second writer on its replica).
	stopped := make(chan *writer.Replicator, len(reps))
	for _, r := range reps {
		go func() {
			select {
			case <-r.Done():
				stopped <- r
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		log.Info("stopping: final sync")
		return stopAll()
	case r := <-stopped:
		err := r.Err()
		if err == nil { // stopped by the signal
			log.Info("stopping: final sync")
			return stopAll()
		}
		return errors.Join(fmt.Errorf("%s: %w", r.Path(), err), stopAll())
	}
}

// parseIntervals parses a comma-separated list of durations.
func parseIntervals(s string) ([]time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "none" {
		return []time.Duration{}, nil
	}
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration (like 30s, 5m, 1h)", part)
		}
		out = append(out, d)
	}
	if len(out) > 8 {
		return nil, fmt.Errorf("%d levels given, at most 8", len(out))
	}
	return out, nil
}
