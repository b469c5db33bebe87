package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"

	"github.com/ltxvfs/ltxvfs/internal/ctxtime"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// probeEvery is how often a follower looks for a committed row.
const probeEvery = time.Millisecond

// upload is the moment the writer's position reached a TXID: its file was
// in storage.
type upload struct {
	at   time.Time
	txid ltx.TXID
}

// follow starts the writer's background syncs (every cfg.sync, its uploads
// and object writes now paying the injected latency too) and one reader
// per target that follows the newest TXID (polling every cfg.poll), all at
// once; then commits rows on the primary at random moments, at least
// cfg.commits of them and for at least cfg.follow, and measures for each
// commit and each follower the time from the commit returning on the
// primary to the first query of the follower that returns the row, and the
// part of it from the upload of the file that holds the commit (the
// writer's TXID moving past the one before the commit) to that query.
//
// Beside each of those followers, whose lookups read the pages of every
// new row, an idle one follows the same replica through counters of its
// own: a connection left open and never queried, so that what it asks of
// storage is what following costs, whatever an application reads. Its
// requests after its open go to figs[i].Follow, the prober's to
// figs[i].FollowWithLookups.
func (b *bench) follow(ctx context.Context, targets []*target, figs []*Figures) error {
	cfg := b.cfg
	beh := wrap.Behaviour{FirstByte: cfg.latency, Bandwidth: cfg.bandwid}
	for _, op := range []wrap.Op{wrap.OpList, wrap.OpOpen, wrap.OpWrite, wrap.OpDelete,
		wrap.OpObjectRead, wrap.OpObjectWrite, wrap.OpObjectList, wrap.OpObjectDelete} {
		b.wfaulty.SetBehaviour(op, beh)
	}

	readers := make([]*reader, len(targets))
	idle := make([]*target, len(targets))
	for i, t := range targets {
		idle[i] = newTarget(t.name+" (idle)", t.client, cfg.seed, beh)
		for _, tt := range []*target{t, idle[i]} {
			r, _, err := b.openReaderOn(ctx, tt, cfg.poll, "", "")
			if err != nil {
				return err
			}
			defer r.close()
			if tt == t {
				readers[i] = r
			}
		}
	}

	var mu sync.Mutex
	var ups []upload
	wctx, stop := context.WithCancel(ctx)
	var watched sync.WaitGroup
	watched.Add(1)
	go func() {
		defer watched.Done()
		last := b.repl.TXID()
		for wctx.Err() == nil {
			if t := b.repl.TXID(); t != last {
				mu.Lock()
				ups = append(ups, upload{at: time.Now(), txid: t})
				mu.Unlock()
				last = t
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	defer watched.Wait()
	defer stop()
	if err := b.repl.Start(ctx); err != nil {
		return fmt.Errorf("start the writer: %w", err)
	}
	uploadAfter := func(txid ltx.TXID, after time.Time) (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, u := range ups {
			if u.txid > txid && !u.at.Before(after) {
				return u.at, true
			}
		}
		return time.Time{}, false
	}

	lags := make([]Lag, len(targets))
	for i, t := range targets {
		for _, tt := range []*target{t, idle[i]} {
			tt.settle()
			tt.counting.Reset()
		}
	}
	start := time.Now()
	for i := 0; i < cfg.commits || time.Since(start) < cfg.follow; i++ {
		b.prog.update("followers: commit %d (at least %d, for at least %s)", i+1, cfg.commits, cfg.follow)
		// Commit at a random moment of the writer's and the pollers'
		// cycles, as an application would.
		if err := ctxtime.Sleep(ctx, time.Duration(b.rng.Int64N(int64(cfg.sync)))); err != nil {
			return err
		}
		before := b.repl.TXID()
		id := b.h.rows + 1
		if err := insertItem(ctx, b.h.primary, id); err != nil {
			return fmt.Errorf("commit on the primary: %w", err)
		}
		committed := time.Now()
		b.h.rows++
		visible, err := b.awaitRow(ctx, targets, readers, id, committed)
		if err != nil {
			return err
		}
		// The watcher samples the writer's position; give it a moment to
		// see the upload the followers have already seen.
		up, ok := uploadAfter(before, committed)
		for wait := time.Now(); !ok && time.Since(wait) < time.Second; up, ok = uploadAfter(before, committed) {
			time.Sleep(200 * time.Microsecond)
		}
		if !ok {
			return fmt.Errorf("item %d is visible to the followers but the writer never moved past TXID %s", id, before)
		}
		for j := range targets {
			lags[j].add(committed, up, visible[j])
		}
	}
	took := time.Since(start)
	for j, t := range targets {
		lags[j].finish(cfg.sync, cfg.poll)
		figs[j].Lag = lags[j]
		figs[j].Follow = newFollowCost(idle[j].counting.Counts(), took, cfg.poll)
		figs[j].FollowWithLookups = newFollowCost(t.counting.Counts(), took, cfg.poll)
	}
	return nil
}

// awaitRow asks every follower, every probeEvery, whether item id is
// there, and returns when each first saw it.
func (b *bench) awaitRow(ctx context.Context, targets []*target, readers []*reader, id int64, committed time.Time) ([]time.Time, error) {
	visible := make([]time.Time, len(readers))
	limit := 30*time.Second + b.cfg.sync + b.cfg.poll
	g, gctx := errgroup.WithContext(ctx)
	for j, r := range readers {
		g.Go(func() error {
			for {
				var n int
				if err := r.conn.QueryRowContext(gctx, `SELECT count(*) FROM items WHERE id = ?`, id).Scan(&n); err != nil {
					return fmt.Errorf("follower of the %s replica: %w", targets[j].name, err)
				}
				if n == 1 {
					visible[j] = time.Now()
					return nil
				}
				if time.Since(committed) > limit {
					return fmt.Errorf("item %d committed on the primary %s ago is still not visible to the follower of the %s replica (writer at TXID %s)",
						id, time.Since(committed).Round(time.Second), targets[j].name, b.repl.TXID())
				}
				if err := ctxtime.Sleep(gctx, probeEvery); err != nil {
					return err
				}
			}
		})
	}
	return visible, g.Wait()
}

// add records one commit: committed on the primary, uploaded, visible to
// the follower.
func (l *Lag) add(committed, up, visible time.Time) {
	if up.After(visible) { // sampled late by at most the watcher's period
		up = visible
	}
	l.samples = append(l.samples, visible.Sub(committed))
	l.upload = append(l.upload, up.Sub(committed))
	l.seen = append(l.seen, visible.Sub(up))
}

// finish computes the percentiles of the commits recorded.
func (l *Lag) finish(sync, poll time.Duration) {
	l.Commits, l.SyncMS, l.PollMS = len(l.samples), ms(sync), ms(poll)
	l.P50MS, l.P99MS = ms(percentile(l.samples, 0.5)), ms(percentile(l.samples, 0.99))
	l.MaxMS = ms(percentile(l.samples, 1))
	l.CommitToUploadP50MS, l.CommitToUploadP99MS = ms(percentile(l.upload, 0.5)), ms(percentile(l.upload, 0.99))
	l.UploadToVisibleP50MS, l.UploadToVisibleP99MS = ms(percentile(l.seen, 0.5)), ms(percentile(l.seen, 0.99))
}
