package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/nginx"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/ltxvfs/ltxvfs/writer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command: 0 on success, 1 when the run failed, 2 for a bad
// command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ltxvfs-bench: %v\n", err)
		if errors.As(err, new(usageError)) {
			return 2
		}
		return 1
	}
	var baseline *Result
	if cfg.baselinePath != "" {
		if baseline, err = readBaseline(cfg.baselinePath); err != nil {
			fmt.Fprintf(stderr, "ltxvfs-bench: %v\n", err)
			return 2
		}
	}
	level := slog.LevelWarn
	if cfg.verbose {
		level = slog.LevelInfo
	}
	b := &bench{
		cfg:  cfg,
		prog: newProgress(stderr),
		log:  slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		rng:  rand.New(rand.NewPCG(cfg.seed, 0x6c74787666732d62)),
	}
	res, err := b.run(ctx)
	b.prog.clear()
	if err != nil {
		fmt.Fprintf(stderr, "ltxvfs-bench: %v\n", err)
		return 1
	}
	printTable(stdout, res)
	for _, other := range []string{targetNoManifest, targetLitestream, targetHTTP} {
		if f := res.of(other); f != nil && f.ColdOpen.Count > 0 {
			printSideBySide(stdout, targetOurs, other, res)
		}
	}
	if baseline != nil {
		printComparison(stdout, baseline, res, cfg.baselinePath)
	}
	if cfg.jsonPath != "" {
		if err := res.writeJSON(cfg.jsonPath); err != nil {
			fmt.Fprintf(stderr, "ltxvfs-bench: %v\n", err)
			return 1
		}
	}
	if cfg.svgPath != "" {
		if err := writeSVG(cfg.svgPath, res); err != nil {
			fmt.Fprintf(stderr, "ltxvfs-bench: %v\n", err)
			return 1
		}
	}
	if cfg.keep {
		fmt.Fprintf(stdout, "\nkept: %s\n", b.work)
	}
	return 0
}

// bench is one run of the harness.
type bench struct {
	cfg  *config
	prog *progress
	log  *slog.Logger
	rng  *rand.Rand

	work     string // the run's directory
	dbPath   string // the primary: a copy of -db, or built
	pageSize int64

	backend    storage.Client // the replica as the backend serves it
	replicaDir string         // the replica's directory, when it is one
	wclient    storage.Client // what the writer writes to: backend, or a tee (see serveHTTP)
	wfaulty    *wrap.Faulty   // the writer's client: latency only while the lag is measured
	nginx      *nginx.Server  // -serve-http

	repl *writer.Replicator
	h    *history

	// The kinds of replica the readers are measured on (see target);
	// litestream and http only with their flags.
	ours, noManifest, litestream, http *target
	cur                                *target // the one being measured

	attached int // readers attached so far, for unique names
}

func (b *bench) run(ctx context.Context) (res *Result, err error) {
	cfg := b.cfg
	res = &Result{Version: 1, StartedAt: time.Now().UTC().Truncate(time.Second)}
	res.Setup = Setup{
		LatencyMS: ms(cfg.latency), BandwidthBytes: cfg.bandwid, CacheBytes: cfg.cacheBytes,
		Seed: cfg.seed, Quick: cfg.quick, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Replica: "temp directory",
		LoadStart: loadAverage(),
	}
	if cfg.serveHTTP { // before the database is built, which takes minutes
		if _, err := nginx.Find(); err != nil {
			return nil, fmt.Errorf("-serve-http: %w (install it: apt-get install nginx-light)", err)
		}
	}
	if b.work, err = os.MkdirTemp(cfg.workDir, "ltxvfs-bench-"); err != nil {
		return nil, fmt.Errorf("work directory: %w", err)
	}
	if !cfg.keep {
		defer os.RemoveAll(b.work)
	}
	defer b.close()

	// The primary.
	b.dbPath = filepath.Join(b.work, "primary.db")
	var rows int64
	start := time.Now()
	switch _, statErr := os.Stat(cfg.dbPath); {
	case cfg.dbPath == "":
		b.prog.step("building a %s database", formatBytes(cfg.size))
		rows, err = buildDatabase(ctx, b.dbPath, cfg.size, b.prog)
		res.Setup.BuildMS = ms(time.Since(start))
	case errors.Is(statErr, os.ErrNotExist):
		b.prog.step("building a %s database at %s (kept for later runs)", formatBytes(cfg.size), cfg.dbPath)
		if rows, err = buildDatabase(ctx, cfg.dbPath, cfg.size, b.prog); err == nil {
			res.Setup.BuildMS = ms(time.Since(start))
			err = copyFile(cfg.dbPath, b.dbPath)
		}
	case statErr != nil:
		err = fmt.Errorf("-db %s: %w", cfg.dbPath, statErr)
	default:
		b.prog.step("copying %s", cfg.dbPath)
		if rows, err = checkDatabase(ctx, cfg.dbPath); err == nil {
			err = copyFile(cfg.dbPath, b.dbPath)
		}
	}
	if err != nil {
		return nil, err
	}

	// The replica and its history.
	if err := b.openReplica(ctx, res); err != nil {
		return nil, err
	}
	b.wclient = b.backend
	var httpClient storage.Client
	if cfg.serveHTTP {
		if httpClient, err = b.serveHTTP(ctx, res); err != nil {
			return nil, err
		}
	}
	b.wfaulty = wrap.NewFaulty(b.wclient, wrap.FaultyConfig{Seed: cfg.seed})
	primary, err := sql.Open("sqlite3", "file:"+b.dbPath+"?_pragma=busy_timeout(10000)&_pragma=synchronous(normal)")
	if err != nil {
		return nil, err
	}
	primary.SetMaxOpenConns(1)
	b.h = &history{primary: primary, rows: rows, rng: b.rng}
	if b.repl, err = newWriter(b.dbPath, b.wfaulty, cfg.sync, b.work, writer.Options{Logger: b.log}); err != nil {
		return nil, err
	}
	b.h.repl = b.repl
	b.prog.step("replicating with the writer: %d small transactions, compactions, a snapshot", 5*cfg.l0PerPhase)
	start = time.Now()
	if err := b.h.replicate(ctx, cfg.l0PerPhase, b.prog); err != nil {
		return nil, err
	}
	res.Setup.ReplicateMS = ms(time.Since(start))
	if err := b.describeSetup(ctx, res); err != nil {
		return nil, err
	}

	// The readers, behind the injected latency, on every kind of replica.
	beh := wrap.Behaviour{FirstByte: cfg.latency, Bandwidth: cfg.bandwid}
	b.ours = newTarget(targetOurs, b.backend, cfg.seed, beh)
	b.noManifest = newTarget(targetNoManifest, withoutManifest(b.backend), cfg.seed, beh)
	if cfg.litestream {
		b.litestream = newTarget(targetLitestream, withoutObjects(b.backend), cfg.seed, beh)
		res.Litestream = &Figures{}
	}
	if httpClient != nil {
		b.http = newTarget(targetHTTP, httpClient, cfg.seed, beh)
		res.HTTP = &Figures{}
	}
	res.NoManifest = &Figures{}
	if err := b.measureAll(ctx, res); err != nil {
		return nil, err
	}
	res.Setup.LoadEnd = loadAverage()
	b.prog.step("done")
	return res, nil
}

// openReplica opens the temp directory or the -replica URL, which must be
// empty: the harness writes its own history.
func (b *bench) openReplica(ctx context.Context, res *Result) error {
	if b.cfg.replica == "" {
		b.replicaDir = filepath.Join(b.work, "replica")
		b.backend = file.New(b.replicaDir)
		return nil
	}
	if u, err := storage.ParseURL(b.cfg.replica); err == nil && u.Scheme == "file" {
		b.replicaDir = u.Path
	}
	c, err := storage.Open(ctx, b.cfg.replica)
	if err != nil {
		return err
	}
	if objs, err := c.ListObjects(ctx, ""); err != nil {
		return fmt.Errorf("-replica %s: list objects: %w", c, err)
	} else if len(objs) > 0 {
		return fmt.Errorf("-replica %s: holds objects already (%s): give an empty location, the harness writes its own history", c, objs[0].Name)
	}
	for _, level := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, storage.SnapshotLevel, storage.LegacyHintLevel} {
		infos, err := storage.ListLevel(ctx, c, level, 0, false)
		if err != nil {
			return fmt.Errorf("-replica %s: list L%d: %w", c, level, err)
		}
		if len(infos) > 0 {
			return fmt.Errorf("-replica %s: holds files already (L%d: %d): give an empty location, the harness writes its own history", c, level, len(infos))
		}
	}
	b.backend = c
	res.Setup.Replica = c.String()
	return nil
}

// describeSetup records the database and the replica as replicated.
func (b *bench) describeSetup(ctx context.Context, res *Result) error {
	var pages int64
	if err := b.h.primary.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&b.pageSize); err != nil {
		return err
	}
	if err := b.h.primary.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		return err
	}
	s := &res.Setup
	s.DatabaseBytes, s.PageSize, s.Rows = pages*b.pageSize, b.pageSize, b.h.rows
	s.LatestTXID = uint64(b.repl.TXID())
	s.FilesByLevel = map[string]int{}
	for level, infos := range b.h.levels {
		s.FilesByLevel[fmt.Sprintf("L%d", level)] = len(infos)
		for _, info := range infos {
			s.ReplicaBytes += info.Size
		}
	}
	if len(b.h.hints) > 0 {
		s.FilesByLevel["hints"] = len(b.h.hints)
	}
	for _, o := range b.h.hints {
		s.ReplicaBytes += o.Size
	}
	s.LatestPlan = describePlan(b.h.plan)
	return nil
}

// describePlan names a plan's files by level, runs of one level counted:
// "L9", "L2", "L1", "L0 x40".
func describePlan(plan []*ltx.FileInfo) []string {
	var out []string
	for i := 0; i < len(plan); {
		j := i
		for j < len(plan) && plan[j].Level == plan[i].Level {
			j++
		}
		if j-i == 1 {
			out = append(out, fmt.Sprintf("L%d", plan[i].Level))
		} else {
			out = append(out, fmt.Sprintf("L%d x%d", plan[i].Level, j-i))
		}
		i = j
	}
	return out
}

// close stops the writer and the primary, and removes a -replica's files
// unless -keep.
func (b *bench) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if b.repl != nil {
		if err := b.repl.Close(ctx); err != nil {
			b.log.Warn("close the writer", "error", err)
		}
	}
	if b.h != nil && b.h.primary != nil {
		b.h.primary.Close()
	}
	if b.nginx != nil {
		b.nginx.Stop()
	}
	if b.cfg.replica != "" && b.backend != nil && !b.cfg.keep {
		if err := b.backend.DeleteAll(ctx); err != nil {
			b.log.Warn("remove the benchmark's files from the replica", "replica", b.backend, "error", err)
		}
	}
}
