package writer

import (
	"context"
	"fmt"

	"github.com/ltxvfs/ltxvfs/internal/token"
)

// maxTokenSyncs bounds the syncs of one SyncToken. One is enough unless
// the WAL restarted while it was read, a file failed to upload at an
// earlier sync, or the manifest could not be published.
const maxTokenSyncs = 4

// SyncToken syncs and returns a read-your-writes token for everything
// committed to the database before the call: a short string such as
// ltx1:00000000000004d2:1718000000123 that a reader of the replica passes to
// the VFS (PRAGMA ltx_wait = 'TOKEN', or wait=TOKEN in its DSN) to see those
// commits, waiting for them if its replica is not there yet.
//
// The token names the replica's newest TXID once the sync has copied the
// whole WAL as it stood when the sync began (and so every transaction
// committed before the call), uploaded it, and published the manifest that
// names it; and the commit time recorded in the file that ends at that TXID,
// by which a reader tells this replica from another one with the same TXID.
// Commits made while SyncToken runs may or may not be included.
//
// Unlike Sync it never checkpoints: a Replicator started with Start
// checkpoints in the background.
func (r *Replicator) SyncToken(ctx context.Context) (string, error) {
	if err := r.Open(ctx); err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for range maxTokenSyncs {
		if r.cs == nil {
			return "", ErrClosed
		}
		// A sync that first uploads a file left pending by a failed
		// sync counts that upload as catching up: only a sync that
		// begins with nothing pending proves that its own reading of
		// the WAL reached the end.
		clean := r.pending == nil
		before := r.caughtUps.Load()
		if err := r.syncLocked(ctx); err != nil {
			return "", fmt.Errorf("sync %s for a read-your-writes token: %w", r.path, err)
		}
		if !clean || r.caughtUps.Load() == before || !r.publishedLocked() {
			continue
		}
		if r.st.txid == 0 || r.st.timestamp.UnixMilli() <= 0 {
			// notest // a sync that caught up has written TXID 1 at least, with a timestamp
			return "", fmt.Errorf("read-your-writes token of %s: the replica %s has no TXID with a commit time", r.path, r.client)
		}
		return token.New(r.st.txid, r.st.timestamp).String(), nil
	}
	if !r.publishedLocked() {
		return "", fmt.Errorf("read-your-writes token of %s: TXID %d is in the replica %s, but the manifest that names it could not be published (see the log); readers see it once a later sync publishes it",
			r.path, r.st.txid, r.client)
	}
	return "", fmt.Errorf("read-your-writes token of %s: %d syncs in a row did not reach the end of the WAL (restarted while being read); try again", r.path, maxTokenSyncs)
}

// publishedLocked reports whether a reader finds the replica's newest TXID:
// the manifest last written names it, or there is no manifest (readers list
// the replica).
func (r *Replicator) publishedLocked() bool {
	if r.opts.NoManifest {
		return true
	}
	p := &r.pub
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case len(p.inDoubt) > 0:
		return false // readers may follow a manifest behind the replica
	case p.current != nil:
		return p.current.TXID >= r.st.txid
	default:
		return p.etag == ""
	}
}
