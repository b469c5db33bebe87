package vfs

import (
	"context"

	"github.com/ltxvfs/ltxvfs/index"
	"github.com/ltxvfs/ltxvfs/pagecache"
)

// coldTuning configures the cold path of a replica: the disk tier, and
// switches that turn features off one by one, so that a benchmark can
// measure each with and without in the same run (the zero value, all on,
// is what users get).
type coldTuning struct {
	diskDir   string // the disk tier's directory ("": none)
	diskBytes int64  // its bound (0: pagecache.DefaultDiskBytes)

	noFrames    bool // frames read with page indexes (and hints) are not kept
	noHints     bool // the interior pages of hints are not kept (hints are still read for their checksums)
	noReadahead bool // sequential reads are not read ahead (nor in key order)
	noKeyOrder  bool // reads in key order are not read ahead (keyorder.go)
	noJoin      bool // a join's lookups are not read ahead (join.go)
	noLeafLevel bool // a small index is not read whole (leaflevel.go)
	noWalk      bool // B-tree interior pages are not found and fetched ahead (interior.go)
}

func (t coldTuning) withDisk(dir string, bytes int64) coldTuning {
	t.diskDir, t.diskBytes = dir, bytes
	return t
}

// coldState is a replica's cold-path settings, and the context of its
// background work (the B-tree walk), which ends with the replica.
type coldState struct {
	tune   coldTuning
	budget int64 // the cache budget
	ctx    context.Context
	stop   context.CancelFunc
}

// hintShare is the part of the cache budget that the interior pages of a
// hint may fill: a hint with more is read for its checksums only.
const hintShare = 4

// setupCold records the cold-path settings and opens the disk tier, if
// any. The index hands the frames it reads along with page indexes (whole
// small files, the first frames of larger ones, the interior pages in the
// hints) to the cache (putFrames): page 1, the schema and the B-tree
// interior pages then come with the open, in its round trips.
func (r *replica) setupCold(cfg replicaConfig) (*pagecache.Disk, error) {
	r.cold = coldState{tune: cfg.cold, budget: cfg.cacheBytes}
	r.cold.ctx, r.cold.stop = context.WithCancel(context.Background())
	if !cfg.cold.noWalk {
		r.walk.max = cfg.cacheBytes / hintShare
	}
	if cfg.cold.diskDir == "" {
		return nil, nil
	}
	return pagecache.OpenDisk(cfg.cold.diskDir, cfg.cold.diskBytes)
}

// hintFrameBytes bounds the interior pages a hint hands to the cache.
func (r *replica) hintFrameBytes() int64 {
	if r.cold.tune.noHints {
		return 0
	}
	return r.cold.budget / hintShare
}

// closeCold ends the reads ahead and the walk of a replica no connection
// uses any more, and waits for them.
func (r *replica) closeCold() {
	r.cold.stop()
	r.walk.wg.Wait()
	r.cache.Close()
}

// putFrames keeps frames of f in the cache. A frame that does not check out
// is dropped with a warning: the page is then read from the file when
// asked for, with the same checks, and fails the query only then.
func (r *replica) putFrames(f *index.File, frames []index.Frame) {
	key := fileKey(f)
	for _, fr := range frames {
		if err := r.cache.Put(pagecache.Key{File: key, Pgno: fr.Pgno}, f.Header.PageSize, fr.Data); err != nil {
			r.log.Warn("ltx vfs: dropped a frame read with a page index", "err", err)
			return
		}
	}
}
