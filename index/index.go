package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/storage"
)

// DefaultConcurrency is how many requests a build has in flight at most.
// An open reads every file of its plan at once (1-3 requests a file), and
// it stays at one round trip only while they all fit: with 32, a plan of
// 44 files (62 requests) took two rounds. It matches the S3 backend's
// connection pool (s3.MaxConnsPerHost).
const DefaultConcurrency = 128

// ErrHistoryChanged is the error of a version that cannot be built again
// because the replica was begun again (its files lost and written anew):
// its TXID now names another commit. A connection pinned there must be
// reopened.
var ErrHistoryChanged = errors.New("the replica was begun again since this version was read; reopen the connection")

// Options tune an Index.
type Options struct {
	Logger      *slog.Logger // slog.Default() if nil
	Concurrency int          // requests in flight while building; DefaultConcurrency if 0

	// Frames, if set, receives the frames read along with page indexes
	// (see FrameSink), and the interior frames of each file's hint when
	// they take up to HintFrameBytes (0: none).
	Frames         FrameSink
	HintFrameBytes int64

	// Objects, if set, keeps the hints read, so that a reader started
	// again opens without reading them from storage.
	Objects ObjectCache

	// Held, if set, says whether a page of a file would be served without
	// a read of storage (a page cache, its disk tier): the index then
	// does not read it along with page indexes.
	Held func(f *File, pgno uint32) bool

	// Moved, if set, is told of the pages that a new version reads from
	// another file than the version it was built from, with the same bytes,
	// because the old file vanished from storage (retention): a page cache
	// can then keep those pages under their new file. It is called before
	// the version is returned, never concurrently with itself.
	Moved func([]Move)
}

// Index tracks the versions of one replica. It is safe for concurrent use.
type Index struct {
	client  storage.Client
	log     *slog.Logger
	cat     *catalog
	moved   func([]Move)
	movedMu sync.Mutex // Moved is never called concurrently

	mf manifestState // see manifest.go

	latest   atomic.Pointer[Version]
	updating chan struct{} // held by the one Update running
	behind   ltx.TXID      // newest TXID of a listing behind latest, warned of (under updating)

	mu     sync.Mutex
	pinned []weak.Pointer[Version]     // versions made by At and Replan, while alive
	probed map[probedKey]*ltx.FileInfo // see Probe
}

// New returns an index over the replica behind client. It does no I/O.
func New(client storage.Client, opts Options) *Index {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	return &Index{
		client:   client,
		log:      opts.Logger,
		cat:      newCatalog(client, opts),
		moved:    opts.Moved,
		updating: make(chan struct{}, 1),
		probed:   map[probedKey]*ltx.FileInfo{},
	}
}

// Latest returns the newest version built so far, or nil before the first
// Update.
func (x *Index) Latest() *Version { return x.latest.Load() }

// Update lists the replica and returns a version at the newest TXID that can
// be rebuilt, extending the previous latest version with only the new files
// when they continue it, or from a fresh plan when they do not (a gap after
// retention). A late compacted file never replaces a newer page. Readers of
// earlier versions are never blocked or changed.
//
// If the replica's newest restorable TXID is behind the latest version (a
// listing that raced with compaction and retention), the latest version is
// kept and returned.
func (x *Index) Update(ctx context.Context) (*Version, error) {
	select {
	case x.updating <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-x.updating }()

	v, err := x.update(ctx)
	if errors.Is(err, os.ErrNotExist) {
		// Retention deleted a file between listing and reading: list again.
		v, err = x.update(ctx)
	}
	return v, err
}

func (x *Index) update(ctx context.Context) (*Version, error) {
	if v, handled, err := x.fromManifest(ctx); handled {
		return v, err
	}
	infos, err := x.cat.listLevels(ctx, false)
	if err != nil {
		return nil, err
	}
	infos = x.asProbed(infos, true)
	files, err := plan.Restore(infos, 0)
	if err != nil {
		return nil, fmt.Errorf("plan the latest version of %s: %w", x.client, err)
	}
	cur := x.Latest()
	if newest := files[len(files)-1].MaxTXID; cur != nil && newest < cur.TXID() {
		if newest != x.behind {
			x.log.Warn("replica's newest restorable TXID is behind the latest version; keeping it",
				"replica", x.client.String(), "newest", newest.String(), "latest", cur.TXID().String())
			x.behind = newest
		}
		return cur, nil
	}
	rel := cur
	if !x.relatable() {
		rel = nil // perhaps another history: built afresh
	}
	return x.advance(ctx, infos, files, cur, rel, "")
}

// advance builds the version of plan from rel (see build), makes it the
// latest in place of cur, and forgets the page indexes it no longer
// needs. from says where the plan came from, for errors and the log.
func (x *Index) advance(ctx context.Context, infos, plan []*ltx.FileInfo, cur, rel *Version, from string) (*Version, error) {
	next, fetched, incremental, err := x.build(ctx, infos, plan, rel)
	if err != nil {
		return nil, fmt.Errorf("update index of %s%s: %w", x.client, from, err)
	}
	x.latest.Store(next)
	x.retainKnown(next)
	if next != cur {
		x.log.Debug("index updated"+from, "replica", x.client.String(), "txid", next.TXID().String(),
			"plan", len(next.plan), "fetched", fetched, "incremental", incremental)
	}
	return next, nil
}

// At returns a version at exactly txid (plan.ErrTXIDNotFound beyond the newest,
// plan.ErrTXIDUnavailable when no retained chain of files reaches it).
func (x *Index) At(ctx context.Context, txid ltx.TXID) (*Version, error) {
	if txid == 0 {
		return nil, fmt.Errorf("version of %s at txid 0: %w: no transaction has TXID 0", x.client, plan.ErrTXIDUnavailable)
	}
	if v := x.Latest(); v != nil && v.TXID() == txid {
		return v, nil
	}
	if v := x.pinnedAt(txid); v != nil {
		return v, nil
	}
	return x.buildAt(ctx, txid, x.Latest(), true)
}

// Replan builds v's TXID again from a fresh listing and plan: the way out
// when a file of v has vanished (retention), which must never be answered
// with a wrong page.
func (x *Index) Replan(ctx context.Context, v *Version) (*Version, error) {
	nv, err := x.buildAt(ctx, v.TXID(), v, false) // a listing: the manifest may name the vanished file
	if err != nil {
		return nil, err
	}
	// The latest version read from the vanished file too: replace it, unless
	// an Update has moved on meanwhile.
	x.latest.CompareAndSwap(v, nv)
	return nv, nil
}

// buildAt lists the replica and builds a version at txid from a fresh plan,
// reading from prev's files where they serve the same pages (see adopt).
func (x *Index) buildAt(ctx context.Context, txid ltx.TXID, prev *Version, useManifest bool) (*Version, error) {
	if !x.relatable() {
		if prev != nil && prev.txid == txid {
			// Replan: nothing tells whether txid names the same commit.
			return nil, fmt.Errorf("build version of %s at txid %s: %w (its manifest is gone: nothing tells that TXID %s still names the same commit)", x.client, txid, ErrHistoryChanged, txid)
		}
		prev = nil
	}
	v, err := x.tryBuildAt(ctx, txid, prev, useManifest)
	if errors.Is(err, os.ErrNotExist) {
		v, err = x.tryBuildAt(ctx, txid, prev, false) // retention raced with the listing
	}
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	live := x.pinned[:0]
	for _, p := range x.pinned {
		if p.Value() != nil {
			live = append(live, p)
		}
	}
	clear(x.pinned[len(live):])
	x.pinned = append(live, weak.Make(v))
	x.mu.Unlock()
	return v, nil
}

func (x *Index) tryBuildAt(ctx context.Context, txid ltx.TXID, prev *Version, useManifest bool) (*Version, error) {
	if files := manifestPlan(x.lastManifest(), txid); useManifest && files != nil {
		// The manifest's plan passes through txid: no listing.
		infos, err := x.cat.loadManifest(ctx, files)
		if err == nil {
			return x.buildPlan(ctx, txid, prev, infos, infos)
		} else if !errors.Is(err, errDisagrees) {
			return nil, err
		}
	}
	infos, err := x.cat.listLevels(ctx, false)
	if errors.Is(err, errors.ErrUnsupported) && !useManifest {
		// Storage that cannot list (a web server): the manifest as it is
		// now, read afresh.
		m, merr := x.readManifest(ctx)
		if files := manifestPlan(m, txid); files != nil {
			if infos, err = x.cat.loadManifest(ctx, files); err == nil {
				return x.buildPlan(ctx, txid, prev, infos, infos)
			}
		} else if merr != nil {
			err = errors.Join(err, merr)
		}
	}
	if err != nil {
		return nil, err
	}
	infos = x.asProbed(infos, false)
	files, err := plan.Restore(infos, txid)
	if err != nil {
		return nil, fmt.Errorf("plan version of %s at txid %s: %w", x.client, txid, err)
	}
	return x.buildPlan(ctx, txid, prev, infos, files)
}

// buildPlan builds the version of a plan from nothing, reading from prev's
// files wherever they serve the same pages and are among infos.
func (x *Index) buildPlan(ctx context.Context, txid ltx.TXID, prev *Version, infos, plan []*ltx.FileInfo) (*Version, error) {
	fxs, fetched, err := x.load(ctx, plan)
	if err != nil {
		return nil, fmt.Errorf("build version of %s at txid %s: %w", x.client, txid, err)
	}
	v, fxs, err := x.fresh(ctx, plan, fxs, fetched)
	if err != nil {
		return nil, fmt.Errorf("build version of %s at txid %s: %w", x.client, txid, err)
	}
	if prev != nil && prev.txid == v.txid && prev.last.Header.Timestamp != v.last.Header.Timestamp {
		// The same TXID, committed at another time: the replica was begun
		// again, and its TXIDs name other commits. Nothing of prev may be
		// read as this version's.
		return nil, fmt.Errorf("build version of %s at txid %s: %w: TXID %s was committed at %s, and the replica's TXID %s now at %s",
			x.client, txid, ErrHistoryChanged, txid, prev.Timestamp().Format(ltx.RFC3339Milli), txid, v.Timestamp().Format(ltx.RFC3339Milli))
	}
	if prev != nil {
		var moves []Move
		v = v.adopt(prev, relate(prev, v, nil), newListing(infos), &moves)
		x.report(moves)
	}
	x.cat.deliver(v, fxs)
	return v, nil
}

// build fetches the page indexes of a plan's files not known yet, and
// builds its version: by extending cur when the plan continues it, else
// afresh, reading from cur's files wherever they serve the same pages and
// are still listed. It reports how many files it fetched.
func (x *Index) build(ctx context.Context, infos, plan []*ltx.FileInfo, cur *Version) (v *Version, fetched int, incremental bool, err error) {
	listed := newListing(infos)
	fxs, fetched, err := x.load(ctx, plan)
	if err != nil {
		return nil, 0, false, err
	}
	var moves []Move
	defer func() {
		if err == nil {
			x.report(moves)
			x.cat.deliver(v, fxs)
		}
	}()
	if cur != nil {
		if v := cur.extend(fxs, listed, &moves); v != nil {
			if v.vanished(listed) {
				// Retention removed files v still reads from and no late
				// file took their pages over: rebuild the same TXID and
				// keep every entry whose file is still there.
				if fresh, _, err := x.fresh(ctx, plan, fxs, len(plan)); err == nil {
					v = fresh.adopt(v, relate(v, fresh, nil), listed, &moves)
				} else {
					// Keep v: a read of a vanished file replans (Replan).
					x.log.Debug("could not rebuild a version whose files vanished", "replica", x.client.String(), "err", err)
				}
			}
			return v, fetched, true, nil
		}
	}
	v, fxs, err = x.fresh(ctx, plan, fxs, fetched)
	if err != nil {
		return nil, 0, false, err
	}
	if cur != nil {
		// A gap, or a plan that starts again from a snapshot: keep cur's
		// entries for the pages that did not change in between.
		v = v.adopt(cur, relate(cur, v, x.bridge(ctx, infos, cur, v)), listed, &moves)
	}
	return v, fetched, false, nil
}

// load returns the page indexes of a plan's files, fetching those not
// known yet, and how many it fetched.
func (x *Index) load(ctx context.Context, plan []*ltx.FileInfo) ([]*fileIndex, int, error) {
	return x.cat.load(ctx, plan)
}

// fresh builds a plan's version from nothing; fetched is how many of fxs
// were just fetched. It returns the page indexes it built from.
func (x *Index) fresh(ctx context.Context, plan []*ltx.FileInfo, fxs []*fileIndex, fetched int) (*Version, []*fileIndex, error) {
	v, err := buildVersion(fxs)
	if err != nil && fetched < len(plan) {
		// A known file may have been deleted and written again under the
		// same name, size and time (a replica started over): fetch every
		// file of the plan again before calling the replica inconsistent.
		x.cat.forget(plan)
		if fxs, _, err = x.cat.load(ctx, plan); err != nil {
			return nil, nil, err
		}
		v, err = buildVersion(fxs)
	}
	return v, fxs, err
}

// report tells Options.Moved of moves.
func (x *Index) report(moves []Move) {
	if x.moved == nil || len(moves) == 0 {
		return
	}
	x.movedMu.Lock()
	defer x.movedMu.Unlock()
	x.moved(moves)
}

// pinnedAt returns the version at txid most recently built by At or Replan,
// if it is still in use.
func (x *Index) pinnedAt(txid ltx.TXID) *Version {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := len(x.pinned) - 1; i >= 0; i-- {
		if v := x.pinned[i].Value(); v != nil && v.TXID() == txid {
			return v
		}
	}
	return nil
}

// retainKnown keeps the page indexes of the files of the latest plan and of
// the versions At and Replan made that are still in use, and forgets the
// rest; a file of an old plan that is needed again is fetched again.
func (x *Index) retainKnown(latest *Version) {
	keep := map[fileKey]bool{}
	for _, f := range latest.plan {
		keep[keyOf(&f.Info)] = true
	}
	x.mu.Lock()
	live := x.pinned[:0]
	for _, p := range x.pinned {
		if v := p.Value(); v != nil {
			live = append(live, p)
			for _, f := range v.plan {
				keep[keyOf(&f.Info)] = true
			}
		}
	}
	clear(x.pinned[len(live):])
	x.pinned = live
	x.mu.Unlock()
	x.cat.retain(keep)
}

// TXIDAt returns the newest TXID committed at or before t (an error naming t
// and the oldest restorable time when t is earlier than every retained
// TXID).
func (x *Index) TXIDAt(ctx context.Context, t time.Time) (ltx.TXID, error) {
	if m := x.lastManifest(); m != nil && !t.Before(m.Time) {
		return m.TXID, nil // nothing newer was committed by then, as of the manifest
	}
	infos, err := x.cat.listLevels(ctx, true)
	if err != nil {
		return 0, err
	}
	txid, err := plan.TXIDAt(infos, t)
	if err != nil {
		return 0, fmt.Errorf("find txid of %s at %s: %w", x.client, t.UTC().Format(ltx.RFC3339Milli), err)
	}
	return txid, nil
}
