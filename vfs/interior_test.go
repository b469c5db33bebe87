package vfs

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/syncbuf"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/pagecache"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/ltxvfs/ltxvfs/writer"
)

// walkIDs are rows spread over the whole table of coldSource: each under
// another interior page.
func walkIDs() []int {
	var ids []int
	for i := range 19 {
		ids = append(ids, 1000*i+500)
	}
	return ids
}

// settleWalk makes lookups (each continues the walk while it runs) until
// the walk has nothing left to fetch.
func settleWalk(t *testing.T, c *sql.Conn, r *replica) {
	t.Helper()
	for i := range 500 {
		r.walk.mu.Lock()
		idle := r.walk.workers == 0 && len(r.walk.queue) == 0
		r.walk.mu.Unlock()
		if idle {
			return
		}
		one[int64](t, c, `SELECT length(v) FROM t WHERE id = ?`, 1+(i*7919)%20000)
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the walk did not settle")
}

// checkRow compares row id as read through c with the primary's.
func checkRow(t *testing.T, src *source, c *sql.Conn, by string, id int) {
	t.Helper()
	q := `SELECT v FROM t WHERE id = ?`
	var arg any = id
	if by == "index" {
		q, arg = `SELECT v FROM t WHERE k = ?`, coldKey(id)
	}
	var got, want []byte
	if err := c.QueryRowContext(context.Background(), q, arg).Scan(&got); err != nil {
		t.Fatalf("row %d by %s: %v", id, by, err)
	}
	if err := src.db.QueryRow(q, arg).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("row %d by %s differs from the primary", id, by)
	}
}

// TestWalkFindsInteriorPages: on a replica without hints (Litestream's),
// once a lookup has walked down each tree, the VFS fetches the rest of
// their interior pages, and a cold lookup waits for its leaves only: one
// request by rowid, two through the index (its leaf, the table's). Without
// the walk, lookups under interior pages not read yet take more.
func TestWalkFindsInteriorPages(t *testing.T) {
	src := coldSource(t)
	for _, tt := range []struct {
		name string
		tune coldTuning
	}{{"walk", coldTuning{}}, {"none", coldTuning{noWalk: true}}} {
		t.Run(tt.name, func(t *testing.T) {
			counting := wrap.NewCounting(litestreamShaped{src.client})
			db, r := attachColdNamed(t, counting, tt.tune)
			c := conn(t, db)
			checkRow(t, src, c, "rowid", 3)
			checkRow(t, src, c, "index", 5)
			settleWalk(t, c, r)
			for _, by := range []string{"rowid", "index"} {
				most := int64(0)
				for _, id := range walkIDs() {
					counting.Reset()
					checkRow(t, src, c, by, id+37)
					most = max(most, counting.Counts().Requests())
				}
				want := int64(1)
				if by == "index" {
					want = 2
				}
				if tt.tune.noWalk && by == "rowid" && most <= want {
					t.Fatalf("without the walk, lookups by %s took %d requests at most: the test does not need interior pages", by, most)
				}
				if !tt.tune.noWalk && most > want {
					t.Fatalf("a cold lookup by %s took %d requests after the walk, want %d", by, most, want)
				}
			}
		})
	}
}

// TestWalkKeepsTheBudget: the walk reads only within half a statement's
// budget, so a point lookup whose budget covers its own reads never fails
// for the walk's; with room to spare, the walk's reads count against the
// statements that make them.
func TestWalkKeepsTheBudget(t *testing.T) {
	src := coldSource(t)
	for _, budget := range []int{2, 1000} {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			slow := wrap.NewFaulty(litestreamShaped{src.client}, wrap.FaultyConfig{Open: wrap.Behaviour{FirstByte: 5 * time.Millisecond}})
			name := fmt.Sprintf("walk-budget-%d", coldSeq.Add(1))
			attach(t, name, Options{Client: slow, Poll: time.Hour})
			db := openDB(t, fmt.Sprintf("file:%s?vfs=ltx&max_requests=%d", name, budget))
			db.SetMaxOpenConns(1)
			c := conn(t, db)
			var total int64
			for _, id := range walkIDs() {
				checkRow(t, src, c, "rowid", id)
				st, err := ParseStats(one[string](t, c, `PRAGMA ltx_stats`))
				if err != nil {
					t.Fatal(err)
				}
				if st.Requests > int64(budget) {
					t.Fatalf("lookup of row %d: %d requests, over max_requests=%d", id, st.Requests, budget)
				}
				total += st.Requests
			}
			if n := int64(len(walkIDs())); budget > 100 && total < n+10 {
				t.Fatalf("%d lookups counted %d requests: the walk's reads did not count", n, total)
			}
		})
	}
}

// gate lets through the reads of the frames it was told of (by offset in
// their file), after 5 ms, and holds every other read until its context
// ends, or fails it, once armed.
type gate struct {
	storage.Client
	mu      sync.Mutex
	allowed map[string]bool // "level/min/max/offset"
	record  bool
	armed   atomic.Bool
	failing bool
	held    atomic.Int64
}

func gateKey(level int, min, max ltx.TXID, off int64) string {
	return fmt.Sprintf("%d/%d/%d/%d", level, min, max, off)
}

func (g *gate) OpenLTXFile(ctx context.Context, level int, min, max ltx.TXID, off, size int64) (io.ReadCloser, error) {
	k := gateKey(level, min, max, off)
	g.mu.Lock()
	if g.record {
		g.allowed[k] = true
	}
	ok := g.allowed[k]
	g.mu.Unlock()
	if !g.armed.Load() {
		return g.Client.OpenLTXFile(ctx, level, min, max, off, size)
	}
	if ok {
		// As storage does: the walk starts while the query waits.
		time.Sleep(5 * time.Millisecond)
		return g.Client.OpenLTXFile(ctx, level, min, max, off, size)
	}
	if g.failing {
		return nil, errors.New("injected failure")
	}
	g.held.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// gatedWalk returns a gate that lets through exactly the reads that two
// lookups make without the walk, armed, and a connection that made the
// first lookup through it: the second makes the walk's reads, which the
// gate holds or fails.
func gatedWalk(t *testing.T, src *source, failing bool, logger *slog.Logger) (*gate, *sql.DB, *sql.Conn, *replica) {
	t.Helper()
	g := &gate{Client: litestreamShaped{src.client}, allowed: map[string]bool{}, failing: failing}
	ids := []int{12345, 777}
	g.record = true
	db, _ := attachColdNamed(t, g, coldTuning{noWalk: true})
	c := conn(t, db)
	for _, id := range ids {
		checkRow(t, src, c, "rowid", id)
	}
	c.Close()
	g.record = false
	name := fmt.Sprintf("walk-gate-%d", coldSeq.Add(1))
	attach(t, name, Options{Client: g, Poll: time.Hour, Logger: logger})
	db = openDB(t, "file:"+name+"?vfs=ltx")
	db.SetMaxOpenConns(1)
	c = conn(t, db)
	g.armed.Store(true)
	// The first lookup learns the tree; the walk it may start ends with
	// its context.
	ctx, cancel := context.WithCancel(context.Background())
	var v []byte
	if err := c.QueryRowContext(ctx, `SELECT v FROM t WHERE id = ?`, ids[0]).Scan(&v); err != nil {
		t.Fatal(err)
	}
	cancel()
	registryMu.Lock()
	r := replicas[attachKey(name)]
	registryMu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); runningWorkers(r) > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first lookup's walk did not end with its context")
		}
	}
	g.held.Store(0)
	return g, db, c, r
}

func runningWorkers(r *replica) int {
	r.walk.mu.Lock()
	defer r.walk.mu.Unlock()
	return r.walk.workers
}

// TestWalkEndsWithTheQuery: a walk whose reads hang on storage ends when
// the query's context ends, and with the replica: no goroutine is left
// behind; the query itself has its rows.
func TestWalkEndsWithTheQuery(t *testing.T) {
	src := coldSource(t)
	before := runtime.NumGoroutine()
	g, db, c, r := gatedWalk(t, src, false, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var v []byte
	if err := c.QueryRowContext(ctx, `SELECT v FROM t WHERE id = ?`, 777).Scan(&v); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.held.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the walk made no read: the test does not test it")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	// Well before a batch's own time limit.
	for quit := time.Now().Add(walkPatience / 2); ; {
		workers := runningWorkers(r)
		if workers == 0 {
			break
		}
		if time.Now().After(quit) {
			t.Fatalf("%d walk workers still running after the query's context ended", workers)
		}
		time.Sleep(time.Millisecond)
	}
	c.Close()
	db.Close()
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWalkFailsSoft: when the walk's reads fail, the query during which
// they ran has its rows, a warning says so, and later queries read the
// pages they need themselves.
func TestWalkFailsSoft(t *testing.T) {
	src := coldSource(t)
	var logs syncbuf.Buffer
	g, _, c, _ := gatedWalk(t, src, true, slog.New(slog.NewTextHandler(&logs, nil)))
	checkRow(t, src, c, "rowid", 777)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "prefetch of B-tree interior pages failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning of the walk's failure; logs:\n%s", logs.String())
		}
		time.Sleep(time.Millisecond)
	}
	g.armed.Store(false)
	for _, id := range walkIDs() {
		checkRow(t, src, c, "rowid", id)
	}
}

// TestWalkAcrossTXIDs: connections at two TXIDs between which the table's
// tree changed shape walk it each in its own version: each reads the rows
// of its TXID.
func TestWalkAcrossTXIDs(t *testing.T) {
	src := coldSource(t)
	old := src.exec(`UPDATE t SET v = randomblob(80) WHERE id % 5 = 0`)
	oldRows := map[int][]byte{}
	for _, id := range walkIDs() {
		var v []byte
		if err := src.db.QueryRow(`SELECT v FROM t WHERE id = ?`, id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		oldRows[id] = v
	}
	src.exec(`DELETE FROM t WHERE id BETWEEN 2000 AND 14000 AND id % 500 != 0`)
	src.exec(`INSERT INTO t(id, k, v) SELECT value + 20000, printf('k%08x', value), randomblob(200) FROM generate_series(1, 5000)`)
	name := fmt.Sprintf("walk-txids-%d", coldSeq.Add(1))
	attach(t, name, Options{Client: litestreamShaped{src.client}, Poll: time.Hour})
	latest := openDB(t, "file:"+name+"?vfs=ltx")
	pinned := openDB(t, fmt.Sprintf("file:%s?vfs=ltx&txid=%d", name, old))
	for round := range 3 {
		for _, id := range walkIDs() {
			var v []byte
			if err := pinned.QueryRow(`SELECT v FROM t WHERE id = ?`, id).Scan(&v); err != nil {
				t.Fatalf("round %d: row %d at TXID %d: %v", round, id, old, err)
			}
			if !bytes.Equal(v, oldRows[id]) {
				t.Fatalf("round %d: row %d at TXID %d differs from what the primary had then", round, id, old)
			}
			var got, want []byte
			err := latest.QueryRow(`SELECT v FROM t WHERE id = ?`, id).Scan(&got)
			werr := src.db.QueryRow(`SELECT v FROM t WHERE id = ?`, id).Scan(&want)
			if (err == nil) != (werr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("round %d: row %d at the latest TXID: %v, %v; the primary: %v", round, id, err, got != nil, werr)
			}
		}
	}
	for _, db := range []*sql.DB{latest, pinned} {
		if got := one[string](t, db, `PRAGMA integrity_check`); got != "ok" {
			t.Fatalf("integrity_check: %s", got)
		}
	}
}

// TestWalkSparesHintedTrees: on our writer's replica, opened from its
// manifest with the hint of its large file, a cold lookup whose way down
// the tree the hint gave makes one request, its leaf: the walk does not
// start (it would fetch the interior pages of the right edge, which
// changed in small files after the hint, and which the open did not read).
func TestWalkSparesHintedTrees(t *testing.T) {
	w := newWritten(t, writer.Options{})
	w.exec(`INSERT INTO t(id, v) SELECT value, hex(randomblob(100)) FROM generate_series(1, 20000)`)
	for i := range 5 {
		w.exec(`INSERT INTO t(id, v) SELECT value, 'new' FROM generate_series(?, ?)`, 20001+100*i, 20100+100*i)
	}
	counting := wrap.NewCounting(w.client)
	db, r := attachColdNamed(t, counting, coldTuning{})
	c := conn(t, db)
	for id := 500; id < 6000; id += 1000 {
		counting.Reset()
		if got := one[int64](t, c, `SELECT length(v) FROM t WHERE id = ?`, id); got != 200 {
			t.Fatalf("row %d: %d characters, want 200", id, got)
		}
		for i := 0; runningWorkers(r) > 0; i++ {
			if i == 10000 {
				t.Fatal("the walk did not end")
			}
			time.Sleep(time.Millisecond)
		}
		if n := counting.Counts().Requests(); n > 1 {
			t.Fatalf("cold lookup of row %d: %d requests, want 1 at most (its leaf)", id, n)
		}
	}
}

// TestWalkLearnsFromAMissedLeaf: on a replica without hints, a way down
// whose interior pages were all held (the open read the files that hold
// them) but whose leaf was not still teaches the walk the tree: it is
// often the only way down a connection shows from the root (SQLite keeps
// the root in its own cache after it). On a replica with hints it does
// not: the open brought the interior pages.
func TestWalkLearnsFromAMissedLeaf(t *testing.T) {
	src := coldSource(t)
	var root uint32
	if err := src.db.QueryRow(`SELECT rootpage FROM sqlite_schema WHERE name = 't'`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		client storage.Client
		learns bool
	}{{"litestream-shaped", litestreamShaped{src.client}, true}, {"hinted", src.client, false}} {
		t.Run(tt.name, func(t *testing.T) {
			db, r := attachColdNamed(t, tt.client, coldTuning{})
			one[int64](t, conn(t, db), `SELECT count(*) FROM sqlite_schema`) // opened
			v := r.latest()
			page := func(pgno uint32) (pagecache.Key, []byte) {
				e, ok := v.Lookup(pgno)
				if !ok {
					t.Fatalf("page %d is in no file", pgno)
				}
				ref := pageRef(e, pgno, v.PageSize())
				data, err := r.cache.Page(t.Context(), ref)
				if err != nil {
					t.Fatal(err)
				}
				return ref.Key, data
			}
			rootKey, rootPage := page(root)
			kids := childrenInOrder(rootPage, root, v.Commit())
			if len(kids) < 2 {
				t.Fatalf("the root of t has %d children: not a tree of 3 levels", len(kids))
			}
			midKey, midPage := page(kids[1])
			if kindOf(midPage, kids[1]) != interiorPage {
				t.Fatal("the root's child is not interior: not a tree of 3 levels")
			}
			leaf := childrenInOrder(midPage, kids[1], v.Commit())[0]
			leafKey, leafPage := page(leaf)
			var d descent
			d.note(context.Background(), r, v, rootKey, rootPage, true)
			d.note(context.Background(), r, v, midKey, midPage, true)
			d.note(context.Background(), r, v, leafKey, leafPage, false)
			r.walk.mu.Lock()
			learned := r.walk.asked[rootKey] > 0
			r.walk.mu.Unlock()
			if learned != tt.learns {
				t.Fatalf("after a way down held but for its leaf, the walk asked for the root's children: %v, want %v", learned, tt.learns)
			}
		})
	}
}
