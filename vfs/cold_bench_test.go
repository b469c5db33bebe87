package vfs

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
	filereplica "github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// The cold-path benchmarks read a replica of a database of LTXVFS_COLD_MB
// megabytes (1024 by default: a rowid table of ~1 KiB rows and a secondary
// index on a hashed key, B-trees of depth 3-4) through storage that answers
// like object storage: 20 ms to the first byte, 100 MB/s per request. They
// count requests and sequential round trips. The replica is built once
// (about a minute for 1 GiB) and kept in the temp directory for the next
// run: delete ltxvfs-cold-* there to rebuild it.
//
// The replica's history: the schema (2 L0 files), the rows inserted in 8
// transactions (8 L0 files), a table o to join with t (2 L0 files), a
// snapshot, then 3 small updates (3 L0 files).
const (
	coldFirstByte = 20 * time.Millisecond
	coldBandwidth = 100e6
	coldBatches   = 8
	coldRowBytes  = 1000  // payload of one row
	coldFixtureV  = 2     // bump when the fixture's content changes
	coldOuterRows = 10000 // rows of o, each pointing to a row of t in no order
)

type coldFixture struct {
	dir    string // the replica
	path   string // the primary database
	rows   int
	dbSize int64
}

var cold struct {
	once sync.Once
	fix  *coldFixture
	err  error
}

func coldMB() int {
	if s := os.Getenv("LTXVFS_COLD_MB"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 1024
}

// coldKey is the secondary key of row id: a hash, so that the index's
// pages fill in random order, as real secondary indexes do.
func coldKey(id int) string { return fmt.Sprintf("k%08x", (uint64(id)*2654435761)%(1<<32)) }

func coldReplica(b *testing.B) *coldFixture {
	b.Helper()
	cold.once.Do(func() {
		mb := coldMB()
		base := filepath.Join(os.TempDir(), fmt.Sprintf("ltxvfs-cold-%dMB-v%d", mb, coldFixtureV))
		fix := &coldFixture{
			dir:  filepath.Join(base, "replica"),
			path: filepath.Join(base, "primary.db"),
			rows: mb * 1e6 / (coldRowBytes + 60),
		}
		if _, err := os.Stat(filepath.Join(base, "done")); err != nil {
			start := time.Now()
			if err := os.RemoveAll(base); err != nil {
				cold.err = err
				return
			}
			buildColdReplica(b, base, fix.rows)
			if err := os.WriteFile(filepath.Join(base, "done"), nil, 0o644); err != nil {
				cold.err = err
				return
			}
			b.Logf("built the cold-path replica in %s", time.Since(start).Round(time.Second))
		}
		if cold.err = writeColdHint(fix.dir); cold.err != nil {
			return
		}
		fi, err := os.Stat(fix.path)
		if err != nil {
			cold.err = err
			return
		}
		fix.dbSize = fi.Size()
		cold.fix = fix
	})
	if cold.err != nil || cold.fix == nil {
		b.Fatalf("cold-path replica: %v", cold.err)
	}
	return cold.fix
}

// fixtureTB places a source in a directory of its own choosing, kept after
// the run.
type fixtureTB struct {
	*testing.B
	base string
	dbs  []*sql.DB
}

func (t *fixtureTB) TempDir() string {
	if err := os.MkdirAll(t.base, 0o755); err != nil {
		t.B.Fatal(err)
	}
	return t.base
}

func (t *fixtureTB) Cleanup(func()) {}

func buildColdReplica(b *testing.B, base string, rows int) {
	src := newSource(&fixtureTB{B: b, base: base}, 4096)
	defer src.db.Close()
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, payload BLOB)`)
	src.exec(`CREATE INDEX t_k ON t(k)`)
	for i := range coldBatches {
		lo := i*rows/coldBatches + 1
		hi := (i + 1) * rows / coldBatches
		src.exec(`INSERT INTO t(id, k, payload) SELECT value, printf('k%08x', (value*2654435761) % 4294967296), randomblob(?) FROM generate_series(?, ?)`,
			coldRowBytes, lo, hi)
		clear(src.files) // nothing is compacted: keep memory bounded
	}
	src.exec(`CREATE TABLE o(id INTEGER PRIMARY KEY, t_id INTEGER)`)
	src.exec(`INSERT INTO o(id, t_id) SELECT value, (value*7919) % ? + 1 FROM generate_series(1, ?)`, rows, coldOuterRows)
	src.snapshot()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 3 {
		src.exec(`UPDATE t SET payload = randomblob(?) WHERE id IN (?, ?, ?)`, coldRowBytes, rng.IntN(rows)+1, rng.IntN(rows)+1, rng.IntN(rows)+1)
	}
}

// writeColdHint writes the hint of the replica's newest snapshot, as the
// writer does, unless it is there.
func writeColdHint(dir string) error {
	ctx := context.Background()
	c := filereplica.New(dir)
	snaps, err := storage.ListLevel(ctx, c, storage.SnapshotLevel, 0, false)
	if err != nil || len(snaps) == 0 {
		return fmt.Errorf("list snapshots: %v (%d)", err, len(snaps))
	}
	s := snaps[len(snaps)-1]
	rc, err := c.OpenLTXFile(ctx, s.Level, s.MinTXID, s.MaxTXID, 0, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	h, err := manifest.BuildHint(s.Level, bufio.NewReaderSize(rc, 1<<20))
	if err != nil {
		return err
	}
	name := manifest.HintName(h.Source())
	_, err = c.WriteObject(ctx, name, bytes.NewReader(h.Encode()), storage.WriteOptions{IfNoneMatch: true})
	if errors.Is(err, storage.ErrPreconditionFailed) {
		return nil
	}
	return err
}

// coldSession is one reader process opening the replica cold: a fresh
// replica (client, index, cache) behind the slow storage.
type coldSession struct {
	b        *testing.B
	name     string
	counting *wrap.Counting
	rounds   *roundsClient
	db       *sql.DB
	conn     *sql.Conn
}

func newColdSession(b *testing.B, fix *coldFixture, mode coldMode) *coldSession {
	b.Helper()
	return newColdSessionDisk(b, fix, mode, "")
}

// newColdSessionDisk is newColdSession with a disk tier in tier, if given,
// and the DSN parameters extra ("max_bytes=64MiB").
func newColdSessionDisk(b *testing.B, fix *coldFixture, mode coldMode, tier string, extra ...string) *coldSession {
	b.Helper()
	var base storage.Client = filereplica.New(fix.dir)
	if mode.litestream {
		base = litestreamShaped{base}
	}
	// Object requests (the manifest, hints) cost what LTX file requests do.
	slow := wrap.NewFaulty(base, wrap.FaultyConfig{
		List:       wrap.Behaviour{FirstByte: coldFirstByte},
		Open:       wrap.Behaviour{FirstByte: coldFirstByte, Bandwidth: coldBandwidth},
		ObjectList: wrap.Behaviour{FirstByte: coldFirstByte},
		ObjectRead: wrap.Behaviour{FirstByte: coldFirstByte, Bandwidth: coldBandwidth},
	})
	s := &coldSession{b: b, rounds: &roundsClient{Client: slow}}
	s.counting = wrap.NewCounting(s.rounds)
	s.name = fmt.Sprintf("cold-%d", coldSeq.Add(1))
	opts := Options{Client: s.counting, Poll: time.Hour, DiskCacheDir: tier}
	if err := attachTuned(s.name, opts, mode.tune); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+s.name+"?"+strings.Join(append([]string{"vfs=ltx"}, extra...), "&"))
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	s.db = db
	return s
}

var coldSeq atomic.Int64

// open opens the connection: listing, page indexes, page 1.
func (s *coldSession) open() {
	c, err := s.db.Conn(context.Background())
	if err != nil {
		s.b.Fatal(err)
	}
	s.conn = c
}

func (s *coldSession) close() {
	if r := acquireName(s.name); r != nil {
		r.walk.mu.Lock()
		s.b.Logf("walk: fetched %d bytes, asked %d, queue %d, failures %d", r.walk.fetched, len(r.walk.asked), len(r.walk.queue), r.walk.failures)
		r.walk.mu.Unlock()
		r.release()
	}
	if s.conn != nil {
		s.conn.Close()
	}
	s.db.Close()
	Detach(s.name)
}

// phase runs fn and returns the requests and round trips it made, after
// the requests it started in the background have ended.
func (s *coldSession) phase(fn func()) (requests int64, rounds int, elapsed time.Duration) {
	s.counting.Reset()
	s.rounds.Reset()
	start := time.Now()
	fn()
	elapsed = time.Since(start)
	s.settle()
	return s.counting.Counts().Requests(), s.rounds.Rounds(), elapsed
}

// settle waits until no request is in flight (background prefetches).
func (s *coldSession) settle() {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if s.counting.Counts().InFlight == 0 {
			time.Sleep(5 * time.Millisecond)
			if s.counting.Counts().InFlight == 0 {
				return
			}
		}
	}
}

func (s *coldSession) query(q string, args ...any) {
	var v any
	if err := s.conn.QueryRowContext(context.Background(), q, args...).Scan(&v); err != nil {
		s.b.Fatalf("%s: %v", q, err)
	}
}

// coldMode is a set of cold-path features, switched on or off.
type coldMode struct {
	name       string
	tune       coldTuning
	litestream bool // the replica as Litestream writes it: no hints, no manifest
}

// coldModes are the feature sets each benchmark runs with, named in
// LTXVFS_COLD_MODES (default: base,all): base has every cold-path feature
// off (the VFS as it was), frames keeps the frames read with page indexes,
// hints adds the hint objects, all adds readahead; nohints is all but the
// interior pages of the hints (read for their checksums still);
// litestream is all, on the replica as Litestream writes it (no hint
// objects, no manifest: storage answers as if they did not exist).
func coldModes() []coldMode {
	return coldModesOr("base,all")
}

func coldModeSet() map[string]coldMode {
	return map[string]coldMode{
		"base":    {tune: coldTuning{noFrames: true, noHints: true, noReadahead: true}},
		"frames":  {tune: coldTuning{noHints: true, noReadahead: true}},
		"hints":   {tune: coldTuning{noReadahead: true}},
		"all":     {},
		"nohints": {tune: coldTuning{noHints: true}},
		// Nothing from our writer: Litestream's replica.
		"litestream": {litestream: true},
		// Litestream's replica, without the B-tree walk.
		"litestream-nowalk": {litestream: true, tune: coldTuning{noWalk: true}},
		// all and litestream, a join's lookups not read ahead.
		"nojoin":            {tune: coldTuning{noJoin: true}},
		"litestream-nojoin": {litestream: true, tune: coldTuning{noJoin: true}},
	}
}

// coldModesOr is coldModes, with names the default.
func coldModesOr(names string) []coldMode {
	all := coldModeSet()
	if s := os.Getenv("LTXVFS_COLD_MODES"); s != "" {
		names = s
	}
	var out []coldMode
	for _, n := range strings.Split(names, ",") {
		if m, ok := all[n]; ok {
			m.name = n
			out = append(out, m)
		}
	}
	return out
}

// median reports the median of xs (the figures of each iteration).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// BenchmarkColdOpen opens the replica cold and runs a first point query by
// rowid: time, requests and round trips of each.
func BenchmarkColdOpen(b *testing.B) {
	fix := coldReplica(b)
	b.Logf("database: %.0f MB, %d rows", float64(fix.dbSize)/1e6, fix.rows)
	for _, mode := range coldModes() {
		b.Run(mode.name, func(b *testing.B) {
			var openMS, openReq, openRounds, firstMS, firstReq, firstRounds []float64
			rng := rand.New(rand.NewPCG(5, 6))
			for b.Loop() {
				s := newColdSession(b, fix, mode)
				req, rounds, el := s.phase(s.open)
				openMS, openReq, openRounds = append(openMS, ms(el)), append(openReq, float64(req)), append(openRounds, float64(rounds))
				req, rounds, el = s.phase(func() { s.query(`SELECT length(payload) FROM t WHERE id = ?`, rng.IntN(fix.rows)+1) })
				firstMS, firstReq, firstRounds = append(firstMS, ms(el)), append(firstReq, float64(req)), append(firstRounds, float64(rounds))
				s.close()
			}
			b.ReportMetric(median(openMS), "open-ms")
			b.ReportMetric(median(openReq), "open-requests")
			b.ReportMetric(median(openRounds), "open-rounds")
			b.ReportMetric(median(firstMS), "first-ms")
			b.ReportMetric(median(firstReq), "first-requests")
			b.ReportMetric(median(firstRounds), "first-rounds")
		})
	}
}

// BenchmarkColdLookups opens the replica cold, then makes coldLookups
// point queries at random rows, by rowid and by the secondary index. Every
// request after the open counts, background prefetches included.
func BenchmarkColdLookups(b *testing.B) {
	const coldLookups = 200
	fix := coldReplica(b)
	for _, mode := range coldModes() {
		for _, by := range []string{"rowid", "index"} {
			b.Run(mode.name+"/"+by, func(b *testing.B) {
				rng := rand.New(rand.NewPCG(7, 8))
				var perLookup, msPer []float64
				for b.Loop() {
					s := newColdSession(b, fix, mode)
					s.phase(s.open)
					req, _, el := s.phase(func() {
						for range coldLookups {
							id := rng.IntN(fix.rows) + 1
							if by == "rowid" {
								s.query(`SELECT length(payload) FROM t WHERE id = ?`, id)
							} else {
								s.query(`SELECT length(payload) FROM t WHERE k = ?`, coldKey(id))
							}
						}
					})
					perLookup = append(perLookup, float64(req)/coldLookups)
					b.Logf("iteration: %.3f requests/lookup", float64(req)/coldLookups)
					msPer = append(msPer, ms(el)/coldLookups)
					s.close()
				}
				b.ReportMetric(median(perLookup), "requests/lookup")
				b.ReportMetric(median(msPer), "ms/lookup")
			})
		}
	}
}

// BenchmarkColdScan reads the first MB megabytes of the table in rowid
// order (or all of it) on a cold replica: MB/s and requests.
func BenchmarkColdScan(b *testing.B) {
	fix := coldReplica(b)
	sizes := []int{2, 32}
	if s := os.Getenv("LTXVFS_COLD_SCAN_MB"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("LTXVFS_COLD_SCAN_MB=%s: %v", s, err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, mode := range coldModes() {
		for _, mb := range sizes {
			rows := mb * 1e6 / (coldRowBytes + 60)
			name := fmt.Sprintf("%dMB", mb)
			if mb == 0 || rows > fix.rows {
				rows, name = fix.rows, "full"
			}
			b.Run(mode.name+"/"+name, func(b *testing.B) {
				var rate, reqs []float64
				for b.Loop() {
					s := newColdSession(b, fix, mode)
					s.phase(s.open)
					req, _, el := s.phase(func() { s.query(`SELECT sum(length(payload)) FROM t WHERE id <= ?`, rows) })
					bytes := float64(rows) * float64(fix.dbSize) / float64(fix.rows)
					rate = append(rate, bytes/1e6/el.Seconds())
					reqs = append(reqs, float64(req))
					s.close()
				}
				b.ReportMetric(median(rate), "MB/s")
				b.ReportMetric(median(reqs), "requests")
			})
		}
	}
}

// BenchmarkColdJoin joins 1,000 consecutive rows of o to the rows of t
// they point to, in no order, on a cold replica: time, requests and round
// trips. LTXVFS_COLD_MODES=all,nojoin,litestream,litestream-nojoin
// compares the join read ahead with one round trip per row.
func BenchmarkColdJoin(b *testing.B) {
	fix := coldReplica(b)
	const rows = 1000
	for _, mode := range coldModesOr("all,nojoin") {
		b.Run(mode.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(9, 10))
			var msOf, reqs, rounds, mb []float64
			for b.Loop() {
				s := newColdSession(b, fix, mode)
				s.phase(s.open)
				lo := rng.IntN(coldOuterRows-rows) + 1
				req, r, el := s.phase(func() {
					s.query(`SELECT sum(length(t.payload)) FROM o JOIN t ON t.id = o.t_id WHERE o.id BETWEEN ? AND ?`, lo, lo+rows-1)
				})
				msOf, reqs, rounds = append(msOf, ms(el)), append(reqs, float64(req)), append(rounds, float64(r))
				mb = append(mb, float64(s.counting.Counts().BytesRead)/1e6)
				s.close()
			}
			b.ReportMetric(median(msOf), "ms")
			b.ReportMetric(median(reqs), "requests")
			b.ReportMetric(median(rounds), "rounds")
			b.ReportMetric(median(mb), "MB")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkColdRestart: a reader makes coldLookups point queries, exits,
// and starts again to make the same queries: the second run's open and
// lookups, with and without the disk tier.
func BenchmarkColdRestart(b *testing.B) {
	const lookups = 200
	fix := coldReplica(b)
	for _, disk := range []bool{false, true} {
		name := "memory"
		if disk {
			name = "disk"
		}
		b.Run(name, func(b *testing.B) {
			var openMS, openReq, perLookup, msPer []float64
			for b.Loop() {
				tier := ""
				if disk {
					tier = b.TempDir()
				}
				rng := rand.New(rand.NewPCG(9, 10))
				ids := make([]int, lookups)
				for i := range ids {
					ids[i] = rng.IntN(fix.rows) + 1
				}
				run := func() (int64, time.Duration, int64, time.Duration) {
					s := newColdSessionDisk(b, fix, coldMode{name: "all"}, tier)
					defer s.close()
					oreq, _, oel := s.phase(s.open)
					req, _, el := s.phase(func() {
						for _, id := range ids {
							s.query(`SELECT length(payload) FROM t WHERE id = ?`, id)
						}
					})
					return oreq, oel, req, el
				}
				run()
				oreq, oel, req, el := run()
				openMS, openReq = append(openMS, ms(oel)), append(openReq, float64(oreq))
				perLookup, msPer = append(perLookup, float64(req)/lookups), append(msPer, ms(el)/lookups)
			}
			b.ReportMetric(median(openMS), "restart-open-ms")
			b.ReportMetric(median(openReq), "restart-open-requests")
			b.ReportMetric(median(perLookup), "requests/lookup")
			b.ReportMetric(median(msPer), "ms/lookup")
		})
	}
}
