package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/vfs"
)

// config is the command line, checked.
type config struct {
	size     int64  // bytes of database to build
	dbPath   string // -db: take (or build and keep) this database
	replica  string // -replica: a real replica URL instead of a temp dir
	keep     bool
	workDir  string // -dir: where the temp files go
	latency  time.Duration
	bandwid  int64 // bytes per second per request; 0: unlimited
	injected bool  // latency or bandwidth is injected

	l0PerPhase  int // L0 files per phase of the replica's history
	lookups     int // cold lookups of each kind after the first
	hot         int // distinct keys the warm lookups cycle through
	warm        time.Duration
	rounds      int
	rangeRows   int
	scanTimeout time.Duration
	commits     int
	sync        time.Duration
	poll        time.Duration
	follow      time.Duration // the least time the followers follow
	cacheBytes  int64
	seed        uint64

	jsonPath, svgPath string
	baselinePath      string
	quick             bool
	verbose           bool

	litestream bool // also measure the replica as Litestream writes it
	serveHTTP  bool // also measure it read from nginx
}

// usageError is a mistake on the command line: one line, exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// sizeFlag is a byte size flag: "1GiB", "64MiB", "100MB", "1048576".
type sizeFlag struct {
	n         *int64
	zeroOK    bool // "0" means none (unlimited)
	perSecond bool // accept a trailing "/s"
}

func (f sizeFlag) String() string {
	if f.n == nil {
		return ""
	}
	return formatBytes(*f.n)
}

func (f sizeFlag) Set(s string) error {
	t := strings.TrimSpace(s)
	if f.perSecond {
		t = strings.TrimSuffix(t, "/s")
	}
	if f.zeroOK && (t == "0" || strings.EqualFold(t, "unlimited")) {
		*f.n = 0
		return nil
	}
	n, err := vfs.ParseSize(t)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "ltx vfs: "))
	}
	*f.n = n
	return nil
}

// quickDefaults are the values -quick gives to flags not set explicitly:
// a small database and few iterations, for CI.
var quickDefaults = map[string]string{
	"size":         "16MiB",
	"l0":           "6",
	"lookups":      "20",
	"hot":          "50",
	"warm":         "150ms",
	"rounds":       "1",
	"range-rows":   "1000",
	"scan-timeout": "30s",
	"commits":      "4",
	"sync":         "100ms",
	"poll":         "100ms",
	"follow":       "0s",
}

// parseFlags reads the command line. -h prints the usage to stdout and
// returns flag.ErrHelp; any mistake is a usageError of one line.
func parseFlags(args []string, stdout io.Writer) (*config, error) {
	cfg := &config{size: 1 << 30, bandwid: 100e6, cacheBytes: vfs.DefaultCacheBytes}
	fs := flag.NewFlagSet("ltxvfs-bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(sizeFlag{n: &cfg.size}, "size", "size of the database to build: bytes, or with a unit (64MiB, 1GiB, 100MB)")
	fs.StringVar(&cfg.dbPath, "db", "", "take this database instead of building one (it is copied, never changed); if the file does not exist, build it there first and keep it for later runs")
	fs.StringVar(&cfg.replica, "replica", "", "replicate into this replica URL (an empty s3://bucket/prefix or directory) instead of a temp directory; no latency is injected unless -latency or -bandwidth is given")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the work directory (database, replica, restored copy) and a -replica's files")
	fs.StringVar(&cfg.workDir, "dir", "", "parent of the work directory (default: the system temp dir)")
	fs.DurationVar(&cfg.latency, "latency", 20*time.Millisecond, "first-byte latency injected into every storage request the readers make")
	fs.Var(sizeFlag{n: &cfg.bandwid, zeroOK: true, perSecond: true}, "bandwidth", "bandwidth of each response body, per request (100MB = 100 MB/s; 0 = unlimited)")
	fs.IntVar(&cfg.l0PerPhase, "l0", 40, "L0 files (small transactions) in each of the 5 phases of the replica's history")
	fs.IntVar(&cfg.lookups, "lookups", 200, "cold point lookups of each kind (rowid, secondary index) after the first")
	fs.IntVar(&cfg.hot, "hot", 100, "distinct rows the warm lookups cycle through")
	fs.DurationVar(&cfg.warm, "warm", 500*time.Millisecond, "how long each warm run lasts (ltx, local file, local immutable)")
	fs.IntVar(&cfg.rounds, "rounds", 7, "warm runs of each kind, interleaved; the median is reported")
	fs.IntVar(&cfg.rangeRows, "range-rows", 10000, "rows in the range scan")
	fs.DurationVar(&cfg.scanTimeout, "scan-timeout", time.Minute, "the longest a scan may run: a slower scan is cut there and reported as partial")
	fs.IntVar(&cfg.commits, "commits", 20, "the least number of commits on the primary whose lag to the followers is measured (see -follow)")
	fs.DurationVar(&cfg.sync, "sync", time.Second, "the writer's sync interval while the lag is measured")
	fs.DurationVar(&cfg.poll, "poll", time.Second, "the followers' poll interval")
	fs.DurationVar(&cfg.follow, "follow", time.Minute, "the least time the followers follow: commits go on past -commits until then (0: -commits only)")
	fs.BoolVar(&cfg.litestream, "litestream", false, "also measure every reader figure on the replica as Litestream writes it (its LTX files only: no hints, no manifest)")
	fs.BoolVar(&cfg.serveHTTP, "serve-http", false, "also read the replica from nginx over HTTP (nginx on PATH, at /usr/sbin/nginx, or $NGINX; started on a loopback port, stopped at the end): cold open, lookups by rowid, full scan, follower")
	fs.Var(sizeFlag{n: &cfg.cacheBytes}, "cache", "page cache budget of each reader")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the rows picked for lookups and of the commit times")
	fs.StringVar(&cfg.jsonPath, "json", "", "write the figures as JSON to this file")
	fs.StringVar(&cfg.svgPath, "svg", "", "draw the latency distributions and the cold/warm comparison as SVG to this file")
	fs.StringVar(&cfg.baselinePath, "baseline", "", "compare the headline figures with this earlier -json: before, now, ratio")
	fs.BoolVar(&cfg.quick, "quick", false, "a small run for CI: "+quickSummary())
	fs.BoolVar(&cfg.verbose, "v", false, "log the writer's and the VFS's info messages")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: ltxvfs-bench [flags]")
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, "Builds a database, replicates it with a realistic history and measures reading it")
		fmt.Fprintln(stdout, "through the ltx VFS behind injected latency (see README.md, \"Benchmark\").")
		fmt.Fprintln(stdout)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}

	// The flag package calls Usage itself on -h and on every mistake: the
	// usage is printed below, once, and for -h only.
	usage := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if fs.NArg() != 0 {
		return nil, usagef("unexpected argument %q (every setting is a flag; run with -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.quick {
		for name, v := range quickDefaults {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return nil, fmt.Errorf("quick default -%s=%s: %w", name, v, err)
				}
			}
		}
	}
	if cfg.replica != "" {
		// Checked now, not after building the database (minutes for 1 GiB).
		if _, err := storage.ParseURL(cfg.replica); err != nil {
			return nil, usagef("-replica: %v", err)
		}
	}
	if cfg.replica != "" && !set["latency"] && !set["bandwidth"] {
		cfg.latency, cfg.bandwid = 0, 0
	}
	cfg.injected = cfg.latency > 0 || cfg.bandwid > 0

	positive := []struct {
		name string
		v    int
		min  int
	}{
		{"l0", cfg.l0PerPhase, 1}, {"lookups", cfg.lookups, 1}, {"hot", cfg.hot, 1},
		{"rounds", cfg.rounds, 1}, {"range-rows", cfg.rangeRows, 1}, {"commits", cfg.commits, 1},
	}
	for _, p := range positive {
		if p.v < p.min {
			return nil, usagef("-%s %d: must be at least %d", p.name, p.v, p.min)
		}
	}
	durations := []struct {
		name string
		v    time.Duration
	}{{"warm", cfg.warm}, {"scan-timeout", cfg.scanTimeout}, {"sync", cfg.sync}, {"poll", cfg.poll}}
	for _, d := range durations {
		if d.v <= 0 {
			return nil, usagef("-%s %s: must be positive", d.name, d.v)
		}
	}
	if cfg.follow < 0 {
		return nil, usagef("-follow %s: must not be negative", cfg.follow)
	}
	if cfg.latency < 0 {
		return nil, usagef("-latency %s: must not be negative", cfg.latency)
	}
	if cfg.size < minSize {
		return nil, usagef("-size %s: the smallest database is %s", formatBytes(cfg.size), formatBytes(minSize))
	}
	return cfg, nil
}

func quickSummary() string {
	return fmt.Sprintf("-size %s, -l0 %s, -lookups %s, -warm %s, -rounds %s, -commits %s, -sync and -poll %s (flags given win)",
		quickDefaults["size"], quickDefaults["l0"], quickDefaults["lookups"], quickDefaults["warm"], quickDefaults["rounds"], quickDefaults["commits"], quickDefaults["sync"])
}

// formatBytes prints a size with a binary unit: 1.00 GiB (from 1000 MiB),
// 64.0 MiB, 512 B.
func formatBytes(n int64) string {
	f := float64(n)
	switch {
	case n >= 1000<<20:
		return fmt.Sprintf("%.2f GiB", f/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", f/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", f/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
