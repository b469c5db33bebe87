package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/ctxtime"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// probeEvery is how often the follower looks for a committed row.
const probeEvery = time.Millisecond

// upload is the moment the writer's position reached a TXID: its file was
// in storage.
type upload struct {
	at   time.Time
	txid ltx.TXID
}

// followerLag starts the writer's background syncs (every cfg.sync, its
// uploads now paying the injected latency too) and a reader that follows
// the newest TXID (polling every cfg.poll), then commits rows on the
// primary at random moments and measures, for each, the time from the
// commit returning on the primary to the first query of the follower that
// returns the row, and the part of it from the upload of the file that
// holds the commit (the writer's TXID moving past the one before the
// commit) to that query.
func (b *bench) followerLag(ctx context.Context) (Lag, error) {
	cfg := b.cfg
	lag := Lag{Commits: cfg.commits, SyncMS: ms(cfg.sync), PollMS: ms(cfg.poll)}
	beh := wrap.Behaviour{FirstByte: cfg.latency, Bandwidth: cfg.bandwid}
	for _, op := range []wrap.Op{wrap.OpList, wrap.OpOpen, wrap.OpWrite, wrap.OpDelete} {
		b.wfaulty.SetBehaviour(op, beh)
	}

	r, _, err := b.openReader(ctx, cfg.poll, "")
	if err != nil {
		return lag, err
	}
	defer r.close()

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
		return lag, fmt.Errorf("start the writer: %w", err)
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

	for i := range cfg.commits {
		b.prog.update("follower lag: commit %d of %d", i+1, cfg.commits)
		// Commit at a random moment of the writer's and the poller's
		// cycles, as an application would.
		if err := ctxtime.Sleep(ctx, time.Duration(b.rng.Int64N(int64(cfg.sync)))); err != nil {
			return lag, err
		}
		before := b.repl.TXID()
		id := b.h.rows + 1
		if err := insertItem(ctx, b.h.primary, id); err != nil {
			return lag, fmt.Errorf("commit on the primary: %w", err)
		}
		committed := time.Now()
		b.h.rows++
		for {
			var n int
			if err := r.conn.QueryRowContext(ctx, `SELECT count(*) FROM items WHERE id = ?`, id).Scan(&n); err != nil {
				return lag, fmt.Errorf("follower: %w", err)
			}
			if n == 1 {
				break
			}
			if time.Since(committed) > 30*time.Second+cfg.sync+cfg.poll {
				return lag, fmt.Errorf("item %d committed on the primary %s ago is still not visible to the follower (writer at TXID %s)", id, time.Since(committed).Round(time.Second), b.repl.TXID())
			}
			if err := ctxtime.Sleep(ctx, probeEvery); err != nil {
				return lag, err
			}
		}
		visible := time.Now()
		// The watcher samples the writer's position; give it a moment to
		// see the upload the follower has already seen.
		up, ok := uploadAfter(before, committed)
		for wait := time.Now(); !ok && time.Since(wait) < time.Second; up, ok = uploadAfter(before, committed) {
			time.Sleep(200 * time.Microsecond)
		}
		if !ok {
			return lag, fmt.Errorf("item %d is visible to the follower but the writer never moved past TXID %s", id, before)
		}
		if up.After(visible) { // sampled late by at most the watcher's period
			up = visible
		}
		lag.samples = append(lag.samples, visible.Sub(committed))
		lag.upload = append(lag.upload, up.Sub(committed))
		lag.seen = append(lag.seen, visible.Sub(up))
	}
	lag.P50MS, lag.P99MS = ms(percentile(lag.samples, 0.5)), ms(percentile(lag.samples, 0.99))
	lag.MaxMS = ms(percentile(lag.samples, 1))
	lag.CommitToUploadP50MS, lag.CommitToUploadP99MS = ms(percentile(lag.upload, 0.5)), ms(percentile(lag.upload, 0.99))
	lag.UploadToVisibleP50MS, lag.UploadToVisibleP99MS = ms(percentile(lag.seen, 0.5)), ms(percentile(lag.seen, 0.99))
	return lag, nil
}
