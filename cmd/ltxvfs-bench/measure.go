package main

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"slices"
	"time"
)

// noPoll keeps the cold readers from listing the replica while they are
// measured: nothing changes in it until the lag is measured.
const noPoll = 24 * time.Hour

// lookupKind is a point lookup: by rowid or through the secondary index.
type lookupKind struct {
	name  string
	query string
}

var (
	byRowid = lookupKind{
		name:  "rowid",
		query: `SELECT id, k, length(payload) FROM items WHERE id = ?`,
	}
	byIndex = lookupKind{
		name:  "index",
		query: `SELECT id, k, length(payload) FROM items WHERE k = ?`,
	}
)

// arg is what the lookup of item id binds.
func (k lookupKind) arg(id int64) any {
	if k.name == "index" {
		return kOf(id)
	}
	return id
}

// lookup reads item id and checks that the row is the one asked for: a
// wrong page served would show here as a wrong key or length.
func lookup(ctx context.Context, q querier, kind lookupKind, id int64) error {
	var gotID, n int64
	var k string
	if err := q.QueryRowContext(ctx, kind.query, kind.arg(id)).Scan(&gotID, &k, &n); err != nil {
		return fmt.Errorf("lookup of item %d by %s: %w", id, kind.name, err)
	}
	if gotID != id || k != kOf(id) || n != payloadLen {
		return fmt.Errorf("lookup of item %d by %s returned item %d, k %q, payload of %d bytes: want k %q, %d bytes", id, kind.name, gotID, k, n, kOf(id), payloadLen)
	}
	return nil
}

// pickIDs returns n distinct random item ids (fewer if there are fewer
// items).
func (b *bench) pickIDs(n int, rows int64) []int64 {
	n = int(min(int64(n), rows))
	seen := make(map[int64]bool, n)
	ids := make([]int64, 0, n)
	for len(ids) < n {
		id := 1 + b.rng.Int64N(rows)
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// coldLookups opens a fresh reader and makes the first lookup after the
// open, then cfg.lookups more of rows not read before.
func (b *bench) coldLookups(ctx context.Context, kind lookupKind) (Lookups, error) {
	heap := heapAlloc()
	r, open, err := b.openReader(ctx, noPoll, "")
	if err != nil {
		return Lookups{}, err
	}
	defer r.close()
	b.cur.opens = append(b.cur.opens, open)
	ids := b.pickIDs(b.cfg.lookups+1, b.h.rows)
	var res Lookups
	res.First, err = b.measure(func() error { return lookup(ctx, r.conn, kind, ids[0]) })
	if err != nil {
		return res, err
	}
	if b.cur.openHeap == 0 {
		b.cur.openHeap = max(int64(heapAlloc())-int64(heap), 1)
	}
	var requests, bytes int64
	for i, id := range ids[1:] {
		b.prog.update("cold lookups by %s: %d of %d", kind.name, i+1, len(ids)-1)
		c, err := b.measure(func() error { return lookup(ctx, r.conn, kind, id) })
		if err != nil {
			return res, err
		}
		requests += c.Requests
		bytes += c.Bytes
		res.samples = append(res.samples, time.Duration(c.MS*1e6))
	}
	res.Count = len(res.samples)
	res.RequestsPerLookup = round3(float64(requests) / float64(res.Count))
	res.BytesPerLookup = round3(float64(bytes) / float64(res.Count))
	res.P50MS, res.P99MS = ms(percentile(res.samples, 0.5)), ms(percentile(res.samples, 0.99))
	res.MaxMS = ms(percentile(res.samples, 1))
	return res, nil
}

// rangeScan reads cfg.rangeRows consecutive items on a fresh reader.
func (b *bench) rangeScan(ctx context.Context) (Scan, error) {
	n := min(int64(b.cfg.rangeRows), b.h.rows)
	lo := 1 + b.rng.Int64N(b.h.rows-n+1)
	return b.scan(ctx, "range scan", n, `SELECT count(*), sum(length(payload)) FROM items WHERE id BETWEEN ? AND ?`, lo, lo+n-1)
}

// indexRangeScan reads, on a fresh reader, the keys of the secondary
// index from a random one on, in key order: five times cfg.rangeRows of
// them (at most half the table). The keys are hashes, so the index's leaves
// lie all over the file, in no page order. It reads the index only; every
// key is 10 characters, so the sum of their lengths times payloadLen/10 is
// what the scan's check wants.
func (b *bench) indexRangeScan(ctx context.Context) (Scan, error) {
	n := min(5*int64(b.cfg.rangeRows), max(b.h.rows/2, 1))
	from := fmt.Sprintf("%010d", b.rng.Int64N(4294967291/2))
	return b.scan(ctx, "index range scan", n, fmt.Sprintf(`SELECT count(*), sum(length(k)) * %d FROM (SELECT k FROM items WHERE k >= ? ORDER BY k LIMIT ?)`, payloadLen/10), from, n)
}

// join reads a tenth of cfg.rangeRows consecutive items with their
// customers on a fresh reader: a range of one table, point lookups in the
// other.
func (b *bench) join(ctx context.Context) (Scan, error) {
	n := min(max(int64(b.cfg.rangeRows)/10, 1), b.h.rows)
	lo := 1 + b.rng.Int64N(b.h.rows-n+1)
	return b.scan(ctx, "join", n, `SELECT count(*), sum(length(i.payload)) FROM items i JOIN customers c ON c.id = i.customer_id
		WHERE i.id BETWEEN ? AND ? AND c.region <> ''`, lo, lo+n-1)
}

// fullScan reads every item on a fresh reader.
func (b *bench) fullScan(ctx context.Context) (Scan, error) {
	return b.scan(ctx, "full scan", b.h.rows, fullScanQuery)
}

const fullScanQuery = `SELECT count(*), sum(length(payload)) FROM items`

// scan runs a query that counts want rows and sums their payloads, cut at
// cfg.scanTimeout.
func (b *bench) scan(ctx context.Context, what string, want int64, query string, args ...any) (Scan, error) {
	r, open, err := b.openReader(ctx, noPoll, "")
	if err != nil {
		return Scan{}, err
	}
	defer r.close()
	b.cur.opens = append(b.cur.opens, open)

	pages0 := r.pageReads()
	s := Scan{Rows: want}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				b.prog.update("%s: %s of database pages read", what, formatBytes((r.pageReads()-pages0)*b.pageSize))
			}
		}
	}()
	s.Cost, err = b.measure(func() error {
		qctx, cancel := context.WithTimeout(ctx, b.cfg.scanTimeout)
		defer cancel()
		var n, sum int64
		err := r.conn.QueryRowContext(qctx, query, args...).Scan(&n, &sum)
		if err != nil && qctx.Err() != nil && ctx.Err() == nil {
			return nil // cut at the timeout: reported as partial
		}
		if err != nil {
			return err
		}
		if n != want || sum != want*payloadLen {
			return fmt.Errorf("%s counted %d items of %d bytes in all: want %d items of %d bytes", what, n, sum, want, want*payloadLen)
		}
		s.Complete = true
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("%s: %w", what, err)
	}
	s.PageBytes = (r.pageReads() - pages0) * b.pageSize
	if s.MS > 0 {
		s.MBPerSec = round3(float64(s.PageBytes) / 1e6 / (s.MS / 1e3))
		s.WireMBPerSec = round3(float64(s.Bytes) / 1e6 / (s.MS / 1e3))
	}
	s.CacheBytes = r.cacheBytes()
	return s, nil
}

// timeTravel opens a fresh reader pinned at the history's old TXID and
// looks an item up in it; the database it sees must be the one of then.
func (b *bench) timeTravel(ctx context.Context) (TimeTravel, error) {
	old := b.h.old
	tt := TimeTravel{TXID: uint64(old)}
	plan, err := b.h.planOf(old)
	if err != nil {
		return tt, err
	}
	tt.PlanFiles = len(plan)
	r, open, err := b.openReader(ctx, noPoll, fmt.Sprintf("&txid=%d", old))
	if err != nil {
		return tt, err
	}
	defer r.close()
	tt.Open = open
	rows, ok := b.h.rowsAt[old]
	if !ok {
		return tt, fmt.Errorf("time travel: no record of TXID %s", old)
	}
	id := b.pickIDs(1, rows)[0]
	if tt.Lookup, err = b.measure(func() error { return lookup(ctx, r.conn, byRowid, id) }); err != nil {
		return tt, fmt.Errorf("time travel to TXID %d: %w", old, err)
	}
	var txid, maxID int64
	if err := r.conn.QueryRowContext(ctx, `PRAGMA ltx_txid`).Scan(&txid); err != nil {
		return tt, err
	}
	if err := r.conn.QueryRowContext(ctx, `SELECT max(id) FROM items`).Scan(&maxID); err != nil {
		return tt, err
	}
	if txid != int64(old) || maxID != rows {
		return tt, fmt.Errorf("time travel to TXID %d: the reader sees TXID %d with %d items, want %d items", old, txid, maxID, rows)
	}
	return tt, nil
}

// localScan runs the full scan's query on the local file at path with
// immutable=1, three times on fresh connections; pageBytes is what the ltx
// full scan read.
func (b *bench) localScan(ctx context.Context, path string, pageBytes int64) (LocalScan, error) {
	var took []time.Duration
	for range 3 {
		l, err := openLocal(ctx, path, "mode=ro&immutable=1")
		if err != nil {
			return LocalScan{}, err
		}
		start := time.Now()
		var n, sum int64
		err = l.conn.QueryRowContext(ctx, fullScanQuery).Scan(&n, &sum)
		took = append(took, time.Since(start))
		l.close()
		if err != nil {
			return LocalScan{}, fmt.Errorf("full scan of %s: %w", path, err)
		}
		if n != b.h.rows {
			return LocalScan{}, fmt.Errorf("full scan of %s counted %d items, want %d", path, n, b.h.rows)
		}
	}
	slices.Sort(took)
	med := took[len(took)/2]
	return LocalScan{MS: ms(med), MBPerSec: round3(float64(pageBytes) / 1e6 / med.Seconds())}, nil
}

// warmLookups compares repeated lookups of cfg.hot rows through the ltx
// VFS with the same lookups on the same database in a local file, through
// the default VFS read-only and with immutable=1, in interleaved runs of
// cfg.warm each; the median run of each kind is reported.
func (b *bench) warmLookups(ctx context.Context, local string) (Warm, error) {
	w := Warm{Hot: b.cfg.hot, samples: map[string][]time.Duration{}}
	r, open, err := b.openReader(ctx, noPoll, "")
	if err != nil {
		return w, err
	}
	defer r.close()
	b.cur.opens = append(b.cur.opens, open)
	plain, err := openLocal(ctx, local, "mode=ro")
	if err != nil {
		return w, err
	}
	defer plain.close()
	immutable, err := openLocal(ctx, local, "mode=ro&immutable=1")
	if err != nil {
		return w, err
	}
	defer immutable.close()

	ids := b.pickIDs(b.cfg.hot, b.h.rows)
	targets := []struct {
		name      string
		q         querier
		rate, p50 *float64
	}{
		{"ltx", r.conn, &w.LtxPerSec, &w.LtxP50US},
		{"local", plain.conn, &w.LocalPerSec, &w.LocalP50US},
		{"local immutable", immutable.conn, &w.LocalImmutablePerSec, &w.LocalImmutableP50US},
	}
	for _, t := range targets { // two passes: every page in SQLite's cache
		for range 2 {
			for _, id := range ids {
				if err := lookup(ctx, t.q, byRowid, id); err != nil {
					return w, fmt.Errorf("warm up %s: %w", t.name, err)
				}
			}
		}
	}
	rates := map[string][]float64{}
	for round := range b.cfg.rounds {
		for _, t := range targets {
			b.prog.update("warm lookups: %s, round %d of %d", t.name, round+1, b.cfg.rounds)
			var n int64
			var samples []time.Duration
			b.cur.settle()
			before := b.cur.counting.Counts().Requests()
			start := time.Now()
			for time.Since(start) < b.cfg.warm {
				t0 := time.Now()
				if err := lookup(ctx, t.q, byRowid, ids[n%int64(len(ids))]); err != nil {
					return w, fmt.Errorf("warm lookup through %s: %w", t.name, err)
				}
				samples = append(samples, time.Since(t0))
				n++
			}
			rates[t.name] = append(rates[t.name], float64(n)/time.Since(start).Seconds())
			w.samples[t.name] = append(w.samples[t.name], samples...)
			if t.name == "ltx" {
				w.LtxRequests += b.cur.counting.Counts().Requests() - before
				w.LtxLookups += n
			}
		}
	}
	for _, t := range targets {
		rs := rates[t.name]
		slices.Sort(rs)
		*t.rate = round3(rs[len(rs)/2])
		*t.p50 = round3(float64(percentile(w.samples[t.name], 0.5)) / 1e3)
	}
	if w.LocalPerSec > 0 && w.LocalImmutablePerSec > 0 {
		w.RatioVsLocal = round3(w.LtxPerSec / w.LocalPerSec)
		w.RatioVsLocalImmutable = round3(w.LtxPerSec / w.LocalImmutablePerSec)
	}
	if w.LtxP50US > 0 {
		w.MedianRatioVsLocal = round3(w.LocalP50US / w.LtxP50US)
		w.MedianRatioVsLocalImmutable = round3(w.LocalImmutableP50US / w.LtxP50US)
	}
	return w, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// local is the database file opened through the default VFS.
type local struct {
	db   *sql.DB
	conn *sql.Conn
}

func openLocal(ctx context.Context, path, params string) (*local, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?"+params)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s?%s: %w", path, params, err)
	}
	return &local{db: db, conn: conn}, nil
}

func (l *local) close() {
	l.conn.Close()
	l.db.Close()
}

func round3(f float64) float64 {
	if f != f { // NaN
		return 0
	}
	return float64(int64(f*1000+0.5)) / 1000
}

// heapAlloc is the Go heap in use after a collection.
func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
