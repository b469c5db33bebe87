package vfs

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ltxvfs/ltxvfs/pagecache"
)

// What a statement cost. The VFS sees a statement as a read transaction:
// SQLite takes the SHARED lock before its first read and releases it when
// it ends (Lock(SHARED) .. Unlock(NONE)). In autocommit mode that is one
// statement (or several, while their rows are open at once on the
// connection); inside BEGIN .. COMMIT it is the whole transaction, whose
// statements the VFS cannot tell apart: the ncruces driver sets the
// connection's interrupt context per query, but one context serves many
// queries (context.Background(), a request's), so it marks no boundary.
//
// Each read transaction gets a fresh statement: its counts start at zero
// and its budget (max_requests=, max_bytes=) is whole again. PRAGMA
// ltx_stats shows the counts of the open one, else of the last one, and
// does not reset them (it opens no read transaction): run it on the same
// connection (a *sql.Conn, or a pool of one) right after the query, once
// its rows are closed.
//
// Counting:
//   - requests and bytes: every storage request made under the statement's
//     context (page reads, its reads ahead, listings to rebuild a version
//     whose file vanished), counted where the requests leave for storage
//     (statClient), so they are what storage saw; a request another
//     connection made for a page both wanted counts for that one only.
//   - cache hits and misses: lookups of the shared page cache (page 1,
//     served from the connection's own copy, is not one). A page a read
//     ahead was bringing counts as a hit, as in the cache's own counters.
//   - disk hits: misses the disk tier (diskcache=) served.
//   - round trips: the statement's waits for storage one after another.
//     SQLite reads one page at a time, and a lookup that waits for storage
//     waits for a read: its own, another connection's read of the same
//     page, or a read ahead under way. A wait is one round trip deeper than
//     the deepest wait that had ended when the read it waits for started;
//     the statement's round trips are the deepest. So waits for reads made
//     in parallel (a batch of reads ahead) count once, and reads ahead that
//     land before the statement asks for their pages count nothing: it is
//     the chain of waits a faster storage would shorten. A rebuild of the
//     version after a file vanished counts one.
type statement struct {
	// The connection's goroutine alone counts these (SQLite calls the file
	// from one goroutine at a time).
	hits, misses, diskHits int64
	rounds                 int64  // the deepest wait
	waits                  []wait // the last waits, by end
	floor                  int64  // the deepest of the waits dropped from waits

	budget budget

	mu       sync.Mutex // the rest: reads ahead count from their goroutines
	requests int64
	bytes    int64 // read from bodies
	reserved int64 // bytes of requests under way not read yet
	inflight int
	ended    bool
	held     int           // reads in the background that may make requests after the end (hold)
	scanning bool          // it reads ahead: the B-tree walk waits for the next statement
	drained  chan struct{} // made by stats to wait on; closed once ended with nothing in flight
}

func newStatement(b budget) *statement {
	return &statement{budget: b}
}

// wait is one wait for storage: when it ended, and the deepest wait that
// had ended by then (the depth of the chain up to it).
type wait struct {
	end   time.Time
	depth int64
}

// keptWaits bounds the waits a statement remembers: a read it waits for
// started at most aheadPatience (a read ahead) or one request (its own)
// before, never hundreds of waits back.
const keptWaits = 256

// looked counts one page lookup served as how (err: it failed).
func (st *statement) looked(how pagecache.Served, err error, m *metrics) {
	if err != nil {
		st.misses++
		return
	}
	switch how.From {
	case pagecache.FromMemory:
		st.hits++
	case pagecache.FromAhead:
		st.hits++
		st.waited(how.Since, time.Now(), m)
	case pagecache.FromDisk:
		st.misses++
		st.diskHits++
		if m != nil {
			m.diskHits.Inc()
		}
	case pagecache.FromStorage:
		st.misses++
		st.waited(how.Since, time.Now(), m)
	}
}

// waited counts a wait, ending at end, for a read that started at since.
func (st *statement) waited(since, end time.Time, m *metrics) {
	// The deepest wait that had ended when the read started: waits end in
	// order, and each keeps the deepest up to it.
	i := sort.Search(len(st.waits), func(i int) bool { return st.waits[i].end.After(since) })
	depth := st.floor + 1
	if i > 0 {
		depth = st.waits[i-1].depth + 1
	}
	if depth > st.rounds {
		if m != nil {
			m.roundTrips.Add(float64(depth - st.rounds))
		}
		st.rounds = depth
	}
	if len(st.waits) == keptWaits {
		st.floor = st.waits[keptWaits/2-1].depth
		st.waits = append(st.waits[:0], st.waits[keptWaits/2:]...)
	}
	st.waits = append(st.waits, wait{end: end, depth: st.rounds})
}

// end marks the statement over: its reads ahead were cancelled, and
// requests made for it from now on are refused (statClient).
func (st *statement) end() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.ended {
		st.ended = true
		st.settle()
	}
}

// hold lets a read in the background that the statement started make its
// requests for it after it ended (a small index read whole, leaflevel.go):
// they count against it, within its budget, and its figures wait for them
// as for requests under way. release ends the hold. hold fails once the
// statement ended.
func (st *statement) hold() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return false
	}
	st.held++
	st.inflight++
	return true
}

func (st *statement) release() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.held--
	st.inflight--
	st.settle()
}

// settle closes drained, if stats waits on it, once the statement is over
// and nothing is in flight. Under mu.
func (st *statement) settle() {
	if st.ended && st.inflight == 0 && st.drained != nil {
		close(st.drained)
		st.drained = nil
	}
}

// statsSettle bounds how long PRAGMA ltx_stats waits for the requests of
// an ended statement still under way (reads ahead it cancelled at its end)
// to finish, so that their bytes are in the figures.
const statsSettle = time.Second

// stats returns the counts; for an ended statement, once its requests
// under way have finished, or statsSettle (or ctx) has passed.
func (st *statement) stats(ctx context.Context) Stats {
	st.mu.Lock()
	var drained chan struct{}
	if st.ended && st.inflight > 0 {
		if st.drained == nil {
			st.drained = make(chan struct{})
		}
		drained = st.drained
	}
	st.mu.Unlock()
	if drained != nil {
		t := time.NewTimer(statsSettle)
		select {
		case <-drained:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return Stats{
		Requests:    st.requests,
		Bytes:       st.bytes,
		RoundTrips:  st.rounds,
		CacheHits:   st.hits,
		CacheMisses: st.misses,
		DiskHits:    st.diskHits,
	}
}

// Stats is what one statement cost: the answer of PRAGMA ltx_stats, as
// the statement type above describes.
type Stats struct {
	Requests    int64 // storage requests
	Bytes       int64 // bytes read from storage
	RoundTrips  int64 // sequential waits for storage
	CacheHits   int64 // page lookups the shared page cache served
	CacheMisses int64 // page lookups it did not
	DiskHits    int64 // misses the disk tier served
}

// statsFields are the names of PRAGMA ltx_stats's fields, in order.
var statsFields = [...]string{"requests", "bytes", "round_trips", "cache_hits", "cache_misses", "disk_hits"}

func (s *Stats) fields() [len(statsFields)]*int64 {
	return [...]*int64{&s.Requests, &s.Bytes, &s.RoundTrips, &s.CacheHits, &s.CacheMisses, &s.DiskHits}
}

// String is the text PRAGMA ltx_stats returns, space-separated
// name=value fields in a fixed order:
//
//	requests=3 bytes=12288 round_trips=2 cache_hits=10 cache_misses=3 disk_hits=0
func (s Stats) String() string {
	var b strings.Builder
	for i, p := range s.fields() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(statsFields[i])
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(*p, 10))
	}
	return b.String()
}

// ParseStats reads what PRAGMA ltx_stats returned. Fields it does not
// know are skipped, so that a newer VFS may add some.
func ParseStats(text string) (Stats, error) {
	var s Stats
	ptrs := s.fields()
	seen := 0
	for _, f := range strings.Fields(text) {
		name, value, ok := strings.Cut(f, "=")
		if !ok {
			return Stats{}, fmt.Errorf("ltx_stats %q: field %q is not name=value", text, f)
		}
		for i, known := range statsFields {
			if name != known {
				continue
			}
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return Stats{}, fmt.Errorf("ltx_stats %q: %s=%s is not a count", text, name, value)
			}
			*ptrs[i] = n
			seen++
		}
	}
	if seen != len(statsFields) {
		return Stats{}, fmt.Errorf("ltx_stats %q: want the fields %s", text, strings.Join(statsFields[:], ", "))
	}
	return s, nil
}

// stmtKey is the context key of the statement a request is made for.
type stmtKey struct{}

func statementOf(ctx context.Context) *statement {
	st, _ := ctx.Value(stmtKey{}).(*statement)
	return st
}

// queryContext is the context of the connection's reads: its interrupt
// context (see context) carrying the open statement, made at its first
// read past the header (a warm statement, served from SQLite's own cache,
// makes none). It is made once per statement and interrupt context, not
// per read.
func (f *file) queryContext() context.Context {
	ctx := f.context()
	if f.tx == nil {
		return ctx // no read transaction: the open's check
	}
	if f.stmt == nil {
		f.stmt = newStatement(f.budget)
	}
	if f.stmtFor != ctx || f.stmtCtxOf != f.stmt {
		f.stmtFor, f.stmtCtxOf = ctx, f.stmt
		f.stmtCtx = context.WithValue(ctx, stmtKey{}, f.stmt)
	}
	return f.stmtCtx
}

// aheadContext is ctx, made for the reads ahead a query asked for,
// carrying the query's statement, so that they count against it (the
// scope's contexts carry no value of the query's).
func aheadContext(ctx, query context.Context) context.Context {
	if st := statementOf(query); st != nil {
		return context.WithValue(ctx, stmtKey{}, st)
	}
	return ctx
}

// beginStatement starts the counts and budget of a read transaction;
// queryContext makes the statement at its first read, so that a warm one
// allocates nothing.
func (f *file) beginStatement() {
	f.stmt, f.lastStmt = nil, nil
}

// endStatement ends them, after the transaction's reads ahead were
// cancelled, and keeps them for PRAGMA ltx_stats (nil: it read nothing).
func (f *file) endStatement() {
	if f.stmt != nil {
		f.stmt.end()
	}
	f.lastStmt, f.stmt = f.stmt, nil
	f.stmtFor, f.stmtCtxOf, f.stmtCtx = nil, nil, nil // hold no query's context
}

// statsPragma answers PRAGMA ltx_stats: the open statement's counts, else
// the last one's.
func (f *file) statsPragma(value string) (string, error) {
	if value != "" {
		return "", fmt.Errorf("ltx_stats=%s: ltx_stats is read-only (it shows what the last statement cost)", value)
	}
	st := f.stmt
	if st == nil {
		st = f.lastStmt
	}
	if st == nil {
		return Stats{}.String(), nil
	}
	return st.stats(f.context()).String(), nil
}
