package vfs

import (
	"context"
	"errors"
	"time"
)

const (
	// pollTimeout bounds one poll, so a hung request cannot stall
	// following forever.
	pollTimeout = 30 * time.Second

	// A poll lists every level (index.Update) when the last listing is
	// listEvery poll intervals old, and at least minListGap; the others
	// probe for the next L0 file (index.Probe), one request. Compactions,
	// snapshots, retention and gaps, which only a listing shows, are so
	// noticed within max(listEvery intervals, minListGap); a new TXID within
	// one interval. (Nothing depends on noticing those quickly: a
	// compaction's L0 files stay for minutes, and a read of a file that
	// retention removed rebuilds the version at once.)
	listEvery  = 10
	minListGap = 10 * time.Second

	// maxProbes bounds the files one poll takes in by probing, one round
	// trip each: a follower further behind lists, and reads the page
	// indexes of what it missed in parallel.
	maxProbes = 8
)

// errBehind: probing found maxProbes new files in a row.
var errBehind = errors.New("more new files than a poll probes for")

// pollLoop follows the replica while at least one connection follows the
// newest TXID. A replica with a manifest is polled by reading its manifest
// (index.Update, a conditional read). Otherwise a poll probes for the
// file the writer makes next, and takes
// in the files that follow it at once (a writer syncing quickly is followed
// without waiting a poll interval per file); every so often (see
// listEvery), and after a probe that could not tell, it lists the levels
// instead.
func (r *replica) pollLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(r.poll)
	defer t.Stop()
	gap := r.listGap
	if gap <= 0 {
		gap = max(listEvery*r.poll, minListGap)
	}
	listed := time.Now() // the opener listed
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if r.idx.FromManifest() {
			// One conditional read of the manifest: a 304 when nothing
			// changed, the new files' page indexes in one round when
			// something did. Nothing is listed or probed.
			err = r.pollOnce(ctx)
		} else if time.Since(listed) < gap {
			if err = r.probe(ctx); err != nil && ctx.Err() == nil {
				r.log.Debug("ltx vfs: probe could not tell; listing", "err", err)
				listed, err = time.Now(), r.pollOnce(ctx)
			}
		} else {
			listed, err = time.Now(), r.pollOnce(ctx)
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			r.log.Warn("ltx vfs: poll failed; readers keep the last version until it succeeds", "err", err)
			failing = true
		case err == nil && failing:
			r.log.Info("ltx vfs: poll succeeds again")
			failing = false
		}
	}
}

// pollOnce brings the index up to date: from the manifest, or by listing
// every level.
func (r *replica) pollOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	if _, err := r.idx.Update(ctx); err != nil {
		return err
	}
	r.lastPoll.Store(time.Now().UnixNano())
	return nil
}

// probe takes in the L0 files that follow the latest version, one request
// each, until one is not there yet.
func (r *replica) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	for range maxProbes {
		_, found, err := r.idx.Probe(ctx)
		if err != nil {
			return err
		}
		if !found {
			r.lastPoll.Store(time.Now().UnixNano())
			return nil
		}
	}
	return errBehind
}
