package writer

import (
	"context"
	"errors"
	"fmt"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/storage"
)

// ErrReplicaLost is wrapped by the error that stops a writer whose replica
// no longer holds the files it wrote: its bucket was deleted (and perhaps
// created again), or it was emptied. Writing the next TXID into what is
// left would make a replica that restores to nothing, and a writer
// restarted on it would go on from there; the writer stops instead and
// says to restart it: a writer that starts on an empty replica begins it
// again with a snapshot of the database, which (with its WAL) holds every
// commit.
var ErrReplicaLost = errors.New("the replica lost the files this writer wrote")

// replicaLost returns an error wrapping ErrReplicaLost when the replica
// can no longer be restored up to the newest TXID this writer uploaded;
// nil when it can, when this writer uploaded nothing, or when the replica
// cannot be listed (err, the listing's error, says why). A file of its
// own that landed after the rest were removed does not count: what
// matters is a chain from a snapshot.
func (r *Replicator) replicaLost(ctx context.Context) (lost, err error) {
	mine := r.TXID()
	if mine == 0 {
		return nil, nil
	}
	files, err := r.listReplica(ctx)
	if err != nil {
		return nil, err
	}
	_, newest := plan.Restorable(files)
	var what string
	todo := "move its files away, then restart the writer"
	switch {
	case len(files) == 0:
		what, todo = "holds no file", "restart the writer"
	case newest == 0:
		what = fmt.Sprintf("holds %d files but no snapshot to restore from", len(files))
	case newest < mine:
		what = "restores up to TXID " + newest.String() + " only"
	default:
		r.log.Debug("the replica still restores up to this writer's TXID", "txid", mine, "restorable", newest, "files", len(files))
		return nil, nil
	}
	return fmt.Errorf("%w: %s %s, though this writer wrote up to TXID %s (was its bucket deleted, or emptied?); replication stops: %s to begin the replica again with a snapshot of the database (the database and its WAL hold every commit)",
		ErrReplicaLost, r.client, what, mine, todo), nil
}

// listReplica lists the LTX files of every level.
func (r *Replicator) listReplica(ctx context.Context) ([]*ltx.FileInfo, error) {
	var files []*ltx.FileInfo
	for level := 0; level <= storage.SnapshotLevel; level++ {
		infos, err := storage.ListLevel(ctx, r.client, level, 0, false)
		if err != nil {
			return nil, fmt.Errorf("list L%d of %s: %w", level, r.client, err)
		}
		files = append(files, infos...)
	}
	return files, nil
}

// newestFile is the replica's file with the highest MaxTXID (an L0 file
// among files that end there), or nil when it has none. A replica whose
// newest TXID cannot be restored (no chain of files leads to it from a
// snapshot) is refused with ErrReplicaLost: a writer that went on from it
// would add to a replica that restores to nothing. It is what a writer
// stopped by ErrReplicaLost may leave (a file that landed after the rest
// were removed), or a replica emptied by hand while no writer ran.
func (r *Replicator) newestFile(ctx context.Context) (*ltx.FileInfo, error) {
	files, err := r.listReplica(ctx)
	if err != nil {
		return nil, err
	}
	newest := newestOf(files)
	if newest == nil {
		return nil, nil
	}
	if _, restorable := plan.Restorable(files); restorable < newest.MaxTXID {
		return nil, fmt.Errorf("%w: %s holds files up to TXID %s but restores only up to TXID %s (the files before them are missing: was it emptied while a writer ran?); not writing to it: move its files away to begin the replica again with a snapshot of the database",
			ErrReplicaLost, r.client, newest.MaxTXID, restorable)
	}
	return newest, nil
}

// newestOf is the file with the highest MaxTXID (an L0 file among files
// that end there), or nil.
func newestOf(files []*ltx.FileInfo) *ltx.FileInfo {
	var newest *ltx.FileInfo
	for _, info := range files {
		if newest == nil || info.MaxTXID > newest.MaxTXID || (info.MaxTXID == newest.MaxTXID && info.Level == 0) {
			newest = info
		}
	}
	return newest
}

// orLost is err, or the error that says the replica lost this writer's
// files if it did: an error that finds the lease or the manifest gone or
// another's is first checked against the replica, since a replica emptied
// under the writer looks the same to them as another writer. When the
// bucket is missing, it is the listing's error, which is not fatal: the
// writer retries until the bucket is back, and then finds out.
func (r *Replicator) orLost(ctx context.Context, err error) error {
	lost, lerr := r.replicaLost(ctx)
	switch {
	case lost != nil:
		return lost
	case errors.Is(lerr, storage.ErrNoBucket):
		r.noteMissingBucket(lerr)
		return lerr
	}
	return err
}

// noteMissingBucket records an error that found the replica's bucket
// missing: before its next write the writer checks that the replica
// still holds its files (see checkReplicaKept), since a bucket created
// again is empty.
func (r *Replicator) noteMissingBucket(err error) {
	if errors.Is(err, storage.ErrNoBucket) {
		r.bucketMissed.Store(true)
	}
}

// checkReplicaKept, after a request found the bucket missing, lists the
// replica before anything more is written to it: while the bucket is
// still missing it fails with the listing's error (naming the bucket),
// once the replica is found without this writer's files it fails with
// ErrReplicaLost, and once it is found whole it clears the doubt.
func (r *Replicator) checkReplicaKept(ctx context.Context) error {
	if !r.bucketMissed.Load() {
		return nil
	}
	lost, err := r.replicaLost(ctx)
	switch {
	case lost != nil:
		return lost
	case err != nil:
		return err
	}
	r.bucketMissed.Store(false)
	return nil
}
