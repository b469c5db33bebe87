package reliability

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/vfs"
)

// queryTimeout is each read's context. A read that returns more than
// lateSlack after it ended is late; one that returns more than hangSlack
// after it hung, which fails the test.
//
// Late reads are counted, not failed, because the VFS has them today:
// opening a connection is bounded by the VFS's own open timeout (a
// minute), not by the query's context, which SQLite's open does not pass
// down; and a following connection's refresh waits for another's on a
// mutex that no context bounds, so that readers queued behind a slow
// refresh each add their wait to their own. Under -race on a busy
// machine they returned up to 7 s after a 1 s context.
const (
	queryTimeout = time.Second
	lateSlack    = time.Second
	hangSlack    = 30 * time.Second
)

// TestReadersNetworkFaults reads a replica on a real S3 server through a
// real fault proxy, with following and pinned connections of the ltx VFS,
// while the writer keeps adding to it (straight to the server), and
// injects each kind of network fault in turn. Every read, in a read
// transaction under a one-second context, must return the rows the source
// held at the TXID it reports (PRAGMA ltx_txid), or fail with an error
// that says why (the network cause or the context's end); none may hang
// past its context, none may return other rows. Once each fault ends, a
// following connection catches up with the newest TXID.
func TestReadersNetworkFaults(t *testing.T) {
	seed := testSeed(t)
	ctx := context.Background()
	chain := newNetChain(t, seed)
	p := newPrimary(t, seed, chain.client(t, "db", false))
	for i := range 40 {
		if err := p.step(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.maintain(ctx, i); err != nil {
			t.Fatal(err)
		}
	}

	name := fmt.Sprintf("network-%d.db", seed)
	// A small cache: reads keep going back to storage.
	if err := vfs.Attach(name, vfs.Options{Client: chain.client(t, "db", true), Poll: 50 * time.Millisecond, CacheBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	defer vfs.Detach(name)
	db, err := sql.Open("sqlite3", "file:"+url.PathEscape(name)+"?vfs=ltx")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	var tally faultTally
	var current atomic.Pointer[string]
	none := "no fault"
	current.Store(&none)
	var (
		samples   = make(chan string, 20)
		writerErr = make(chan error, 1)
		wg        sync.WaitGroup
		errs      errorKinds
		lateReads errorKinds
	)
	sample := func(format string, args ...any) {
		select {
		case samples <- fmt.Sprintf(format, args...):
		default:
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	// The writer goes on, straight to the server.
	wg.Go(func() {
		for i := 40; runCtx.Err() == nil; i++ {
			if err := p.step(ctx); err != nil {
				writerErr <- err
				return
			}
			if err := p.maintain(ctx, i); err != nil {
				writerErr <- err
				return
			}
			// Slow enough that the database stays small enough to read
			// whole within a read's context on a busy machine.
			time.Sleep(40 * time.Millisecond)
		}
	})
	const followers, pinned = 3, 3
	for g := range followers + pinned {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for runCtx.Err() == nil {
				var pin ltx.TXID
				if g >= followers {
					pin = p.h.pick(rng)
				}
				kind := *current.Load()
				readCtx, cancel := context.WithTimeout(runCtx, queryTimeout)
				start := time.Now()
				txid, k, fp, err := faultyRead(readCtx, db, pin)
				took := time.Since(start)
				cancel()
				if runCtx.Err() != nil {
					return
				}
				tally.update(kind, func(o *faultOutcome) {
					switch {
					case took > queryTimeout+hangSlack:
						o.hangs++
						sample("during %s, a read under a %v context hung for %v: %v", kind, queryTimeout, took.Round(time.Millisecond), err)
					case took > queryTimeout+lateSlack:
						o.late++
						lateReads.add(fmt.Errorf("returned after %v: %w", took.Round(100*time.Millisecond), err))
					}
					switch {
					case err != nil && namedError(err):
						o.named++
						errs.add(err)
					case err != nil:
						o.unclear++
						sample("during %s, a read failed without saying why: %v", kind, err)
					case pin != 0 && txid != pin:
						o.wrong++
						sample("during %s, a connection pinned at TXID %s read TXID %s", kind, pin, txid)
					default:
						if err := p.h.checkRead(txid, k, fp); err != nil {
							o.wrong++
							sample("during %s, wrong rows: %v", kind, err)
						} else {
							o.ok++
						}
					}
				})
			}
		})
	}

	catchUp := func(what string) time.Duration {
		t.Helper()
		start := time.Now()
		newest := p.r.TXID()
		for {
			readCtx, cancel := context.WithTimeout(ctx, 5*queryTimeout)
			txid, k, fp, err := faultyRead(readCtx, db, 0)
			cancel()
			if err == nil {
				if err := p.h.checkRead(txid, k, fp); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if txid >= newest {
					return time.Since(start)
				}
			}
			if time.Since(start) > 30*time.Second {
				t.Errorf("%s: 30 s later a following connection reads TXID %s (err %v); the replica is at %s", what, txid, err, newest)
				return -1
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	catchUp("before the faults")
	for i, f := range netFaults {
		slowDowns := chain.throttle.SlowDowns()
		current.Store(&f.name)
		end, err := chain.inject(f, seed+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(f.duration())
		if err := end(); err != nil {
			t.Fatal(err)
		}
		took := catchUp("after " + f.name)
		current.Store(&none)
		tally.update(f.name, func(o *faultOutcome) {
			o.injected++
			o.catchUp = max(o.catchUp, took)
			o.slowDowns += chain.throttle.SlowDowns() - slowDowns
		})
	}
	stop()
	wg.Wait()
	select {
	case err := <-writerErr:
		t.Fatalf("writer: %v", err)
	default:
	}
	close(samples)
	for s := range samples {
		t.Error(s)
	}

	var report strings.Builder
	var total faultOutcome
	for _, kind := range append([]string{none}, faultNames()...) {
		o := tally.get(kind)
		total.ok += o.ok
		total.named += o.named
		fmt.Fprintf(&report, "  %-22s reads: %d correct rows, %d named errors, %d unclear errors, %d wrong rows, %d late, %d hung",
			kind, o.ok, o.named, o.unclear, o.wrong, o.late, o.hangs)
		if o.injected > 0 {
			fmt.Fprintf(&report, "; caught up %v after the fault ended", o.catchUp.Round(time.Millisecond))
		}
		if o.slowDowns > 0 {
			fmt.Fprintf(&report, "; %d requests answered 503 SlowDown", o.slowDowns)
		}
		report.WriteString("\n")
		if o.injected > 0 && o.ok+o.named == 0 {
			t.Errorf("%s: no read ended while it lasted", kind)
		}
	}
	t.Logf("%d transactions, newest TXID %s; %d reads returned rows, all correct; %d failed saying why", p.m.committed(), p.r.TXID(), total.ok, total.named)
	t.Logf("reads by fault (each under a %v context):\n%s", queryTimeout, report.String())
	t.Logf("read errors by kind:\n%s", errs.String())
	if n := lateReads.total(); n > 0 {
		t.Logf("reads that returned more than %v after their %v context (%d):\n%s", lateSlack, queryTimeout, n, lateReads.String())
	}
}

func faultNames() []string {
	var names []string
	for _, f := range netFaults {
		names = append(names, f.name)
	}
	return names
}
