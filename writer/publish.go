package writer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/storage"
)

// The writer publishes a manifest (see package manifest) beside the LTX
// files: what a reader needs to open the newest TXID without listing the
// replica. It replaces it after every change that alters the newest
// restore plan (a new TXID, a compaction or snapshot the plan takes, a
// file leaving the plan), by a compare-and-swap on the ETag it last
// wrote or read: a write refused because the manifest changed under the
// writer means that another writer published one, and this writer stops
// (ErrReplicaConflict), as it does on finding another writer's LTX file.
//
// The plan is made over the writer's own descriptions of the replica's
// files (what a manifest says of each), kept as it writes and deletes
// them: the files of the newest plan are described when the writer
// starts, from the manifest it finds, their hints or the files
// themselves; every file written after is described from what the writer
// built while writing it.
//
// Publishing never holds replication up beyond its one request (retried a
// few times when it fails): a publish that still fails is logged, readers
// keep the previous manifest, and the next sync tries again.

// redescribeAfter is how long the writer waits before it describes the
// replica again from a listing when its descriptions did not plan up to
// its newest file (a file it could not describe).
const redescribeAfter = time.Minute

// publishAttempts bounds the writes of one publish; publishBackoff is the
// wait after the first failed one, doubled after each.
const publishAttempts = 3

var publishBackoff = 50 * time.Millisecond

// fileKey names a file as a listing does.
type fileKey struct {
	level    int
	min, max ltx.TXID
}

func keyOfInfo(f *ltx.FileInfo) fileKey { return fileKey{f.Level, f.MinTXID, f.MaxTXID} }
func keyOfFile(f manifest.File) fileKey { return fileKey{f.Level, f.MinTXID, f.MaxTXID} }

// publisher is the writer's side of the manifest. Everything in it is
// guarded by mu, which a publish holds through its write: publishes are
// serialized, each naming the newest plan when it is made.
//
// Files are added once they are in storage and forgotten once deleted from
// it, each under mu: describeReplica, which lists the replica under mu,
// sees every change either in its listing or after it.
type publisher struct {
	mu    sync.Mutex
	ready bool      // files holds the newest plan (describeReplica ran)
	retry time.Time // when describeReplica may run again, after a plan that fell short
	files map[fileKey]manifest.File

	etag    string             // of the manifest as last written or read; "" when there is none
	seq     uint64             // the highest seq written or read
	history string             // manifest.Manifest.History: found, or chosen (see describeReplica)
	current *manifest.Manifest // the manifest as last written or found (nil: none usable)
	changed bool               // files changed since current was found to name their plan

	// Writes whose outcome is unknown since the last one known to have
	// landed, the newest last (at most maxInDoubt; the last one is retried
	// as it was while the plan stays the same).
	inDoubt  []doubtful
	replaced []replacedManifest // manifests replaced within the grace
	warned   string             // the last warning logged (each once while it lasts)
}

// doubtful is a manifest write whose outcome is unknown: a refused write
// that finds it in storage is not a conflict, and readers may be reading
// the files it names. The newest keeps its manifest and bytes, to send
// again.
type doubtful struct {
	m     *manifest.Manifest
	b     []byte
	sum   [32]byte
	files []fileKey
}

// maxInDoubt bounds the writes in doubt remembered: past it the oldest is
// forgotten (finding it in storage would then stop the writer: an error,
// never a wrong row).
const maxInDoubt = 64

// inDoubtWith reports whether b is the content of a write in doubt.
func (p *publisher) inDoubtWith(b []byte) bool {
	sum := sha256.Sum256(b)
	for _, d := range p.inDoubt {
		if d.sum == sum {
			return true
		}
	}
	return false
}

// replacedManifest is a manifest readers may still be reading: the files
// it names, and when a newer one replaced it.
type replacedManifest struct {
	at    time.Time
	files []fileKey
}

func keysOf(files []manifest.File) []fileKey {
	keys := make([]fileKey, len(files))
	for i, f := range files {
		keys[i] = keyOfFile(f)
	}
	return keys
}

// describe records a file the writer has written (or found).
func (r *Replicator) describe(f manifest.File) {
	if r.opts.NoManifest {
		return
	}
	if f.Size <= manifest.WholeFileMax && f.Index == nil {
		// Never named by a manifest without its page index: readers
		// would refuse the manifest.
		r.log.Warn("manifest: a file without its page index is left out; plans skip it", "file", f.Name())
		return
	}
	r.pub.mu.Lock()
	r.pub.files[keyOfFile(f)] = f
	r.pub.changed = true
	r.pub.mu.Unlock()
}

// describeWritten describes a compaction or snapshot just written, from
// its hint as built while writing it (h, hintSize from writeHint), or, when
// the builder could not follow it, from storage.
func (r *Replicator) describeWritten(ctx context.Context, info *ltx.FileInfo, h *manifest.Hint, hintSize int64) {
	if r.opts.NoManifest {
		return
	}
	if h != nil {
		r.describe(manifest.FileOf(h, hintSize))
		return
	}
	f, err := r.describeFile(ctx, info, nil)
	if err != nil {
		r.log.Warn("manifest: cannot describe a file written; plans skip it", "file", storage.FileName(info.Level, info.MinTXID, info.MaxTXID), "err", err)
		return
	}
	r.describe(f)
}

// unsure makes the next publish describe the replica again from a
// listing: a write of an LTX file failed, and may have landed all the
// same (an object store can store an upload whose answer is lost, or was
// cancelled as it ended, at Close). Its file, if it is there, makes a
// newer plan that the manifest must name.
func (r *Replicator) unsure() {
	if r.opts.NoManifest {
		return
	}
	r.pub.mu.Lock()
	r.pub.ready, r.pub.retry = false, time.Time{}
	r.pub.mu.Unlock()
}

// forget drops the descriptions of deleted files.
func (r *Replicator) forget(del []*ltx.FileInfo) {
	if r.opts.NoManifest {
		return
	}
	r.pub.mu.Lock()
	for _, f := range del {
		delete(r.pub.files, keyOfInfo(f))
	}
	r.pub.changed = true
	r.pub.mu.Unlock()
}

// publishedFiles are the files retention keeps for the manifest's
// readers: those of the manifest readers read now (or may: one whose
// write is in doubt) and of those replaced within the grace.
func (r *Replicator) publishedFiles(now time.Time) map[fileKey]bool {
	p := &r.pub
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := map[fileKey]bool{}
	add := func(keys []fileKey) {
		for _, k := range keys {
			keep[k] = true
		}
	}
	if p.current != nil {
		add(keysOf(p.current.Files))
	}
	for _, d := range p.inDoubt {
		add(d.files)
	}
	grace := max(r.opts.ManifestGrace, 0)
	kept := p.replaced[:0]
	for _, rm := range p.replaced {
		if now.Sub(rm.at) < grace {
			add(rm.files)
			kept = append(kept, rm)
		}
	}
	clear(p.replaced[len(kept):])
	p.replaced = kept
	return keep
}

// publish writes a new manifest if the newest plan of the described files
// is not the one the manifest names. Its only error is ErrReplicaConflict
// (another writer published a manifest: replication stops); any other
// failure is logged and left to the next sync.
func (r *Replicator) publish(ctx context.Context) error {
	if r.opts.NoManifest {
		r.withdrawOnce(ctx)
		return nil
	}
	p := &r.pub
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready && !p.changed && len(p.inDoubt) == 0 {
		return nil
	}
	if !p.ready {
		if time.Now().Before(p.retry) {
			return nil
		}
		if err := r.describeReplica(ctx); err != nil {
			r.publishFailed(ctx, "the replica's files could not be described", err)
			return nil
		}
	}
	m, err := r.nextManifest()
	if err != nil {
		// Never publish a manifest behind the replica, nor leave one
		// that readers would follow while it falls behind.
		p.ready, p.retry = false, time.Now().Add(redescribeAfter)
		r.publishFailed(ctx, "it could not name the newest TXID (readers list the replica instead)", err)
		r.withdrawLocked(ctx)
		return nil
	}
	if m == nil {
		p.changed = false
		return nil
	}
	if n := len(p.inDoubt); n > 0 && p.inDoubt[n-1].m != nil && p.inDoubt[n-1].m.SameFiles(m) {
		// The same plan as the write in doubt: the same bytes, so that
		// finding them in storage needs nothing more.
		return r.writeManifest(ctx, p.inDoubt[n-1].m, p.inDoubt[n-1].b)
	}
	p.seq++
	m.Seq = p.seq
	b, err := m.Encode()
	if err != nil {
		r.publishFailed(ctx, "encoding failed", err)
		return nil
	}
	return r.writeManifest(ctx, m, b)
}

// nextManifest plans over the described files and returns the manifest
// of that plan, or nil when the manifest names it already. It fails when
// the plan does not reach the newest file described.
func (r *Replicator) nextManifest() (*manifest.Manifest, error) {
	p := &r.pub
	if len(p.files) == 0 {
		return nil, nil // nothing replicated yet
	}
	infos := make([]*ltx.FileInfo, 0, len(p.files))
	var newest ltx.TXID
	for _, f := range p.files {
		infos = append(infos, f.Info())
		newest = max(newest, f.MaxTXID)
	}
	planned, err := plan.Restore(infos, 0)
	if err != nil {
		return nil, err
	}
	if end := planned[len(planned)-1].MaxTXID; end != newest {
		return nil, fmt.Errorf("the files the writer could describe plan up to TXID %s, not %s", end, newest)
	}
	m := &manifest.Manifest{Files: make([]manifest.File, len(planned))}
	for i, info := range planned {
		m.Files[i] = p.files[keyOfInfo(info)]
	}
	if p.current != nil && len(p.inDoubt) == 0 && m.SameFiles(p.current) {
		return nil, nil
	}
	last := m.Files[len(m.Files)-1]
	m.TXID, m.Time, m.Published = last.MaxTXID, last.Created, time.Now().UTC()
	m.History = p.history
	return m, nil
}

// writeManifest replaces the manifest with b (m encoded), if it is still
// the one this writer last wrote or read (or creates it, if there was
// none), retrying a failed write a few times.
func (r *Replicator) writeManifest(ctx context.Context, m *manifest.Manifest, b []byte) error {
	p := &r.pub
	opts := storage.WriteOptions{IfMatch: p.etag, IfNoneMatch: p.etag == ""}
	wait := publishBackoff
	var err error
	for attempt := 1; attempt <= publishAttempts; attempt++ {
		var info storage.ObjectInfo
		info, err = r.client.WriteObject(ctx, manifest.Name, bytes.NewReader(b), opts)
		if errors.Is(err, storage.ErrPreconditionFailed) {
			info, err = r.manifestRefused(ctx, b, &opts)
			if errors.Is(err, errEarlierLanded) {
				continue // at once, on the ETag of that write
			}
		}
		switch {
		case err == nil:
			r.manifestLanded(m, info.ETag)
			return nil
		case isFatal(err):
			r.m.publishErrors.Inc()
			r.setFatal(err)
			return err
		case ctx.Err() != nil || attempt == publishAttempts:
		default:
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			wait *= 2
			continue
		}
		break
	}
	// It may have landed all the same: until a write is known to have,
	// finding this one in storage is no conflict, and readers may be
	// reading it.
	if !p.inDoubtWith(b) {
		if len(p.inDoubt) == maxInDoubt {
			p.inDoubt = slices.Delete(p.inDoubt, 0, 1)
		}
		if n := len(p.inDoubt); n > 0 {
			p.inDoubt[n-1].m, p.inDoubt[n-1].b = nil, nil
		}
		p.inDoubt = append(p.inDoubt, doubtful{m: m, b: b, sum: sha256.Sum256(b), files: keysOf(m.Files)})
	}
	r.publishFailed(ctx, "the write failed (it may have landed)", err)
	return nil
}

// errEarlierLanded: a write refused found in storage an earlier write of
// this writer whose outcome was in doubt; opts now carry its ETag.
var errEarlierLanded = errors.New("an earlier manifest write landed")

// manifestRefused finds out why the write of b was refused: it landed
// already (the retry of a write whose answer was lost), or an earlier
// write in doubt landed, or another writer published a manifest.
func (r *Replicator) manifestRefused(ctx context.Context, b []byte, opts *storage.WriteOptions) (storage.ObjectInfo, error) {
	p := &r.pub
	got, info, err := storage.ReadAllObject(ctx, r.client, manifest.Name, storage.ReadOptions{}, manifest.MaxSize)
	switch {
	case err == nil && bytes.Equal(got, b):
		return info, nil
	case err == nil && p.inDoubtWith(got):
		p.etag = info.ETag
		*opts = storage.WriteOptions{IfMatch: info.ETag}
		return info, errEarlierLanded
	case errors.Is(err, os.ErrNotExist):
		return info, r.orLost(ctx, fmt.Errorf("%w: the manifest of %s was removed since this writer wrote its own; not writing to the replica any more (the WAL keeps what is not replicated)",
			ErrReplicaConflict, r.client))
	case err != nil:
		return info, fmt.Errorf("read the manifest of %s back after a refused write: %w", r.client, err)
	}
	what := "by something that is not a valid manifest"
	if other, err := manifest.Decode(got); err == nil {
		what = fmt.Sprintf("by seq %d at TXID %s, published %s", other.Seq, other.TXID, other.Published.Format(ltx.RFC3339Milli))
	}
	mine := "none"
	if p.current != nil {
		mine = fmt.Sprintf("seq %d at TXID %s", p.current.Seq, p.current.TXID)
	}
	return info, fmt.Errorf("%w: the manifest of %s was replaced (%s) since this writer wrote its own (%s); not writing to the replica any more (the WAL keeps what is not replicated)",
		ErrReplicaConflict, r.client, what, mine)
}

// manifestLanded records m as the manifest readers now read.
func (r *Replicator) manifestLanded(m *manifest.Manifest, etag string) {
	p := &r.pub
	now := time.Now()
	if p.current != nil {
		p.replaced = append(p.replaced, replacedManifest{now, keysOf(p.current.Files)})
	}
	p.forgetInDoubt(now)
	p.current, p.etag, p.changed, p.warned = m, etag, false, ""
	r.m.publishes.Inc()
	r.m.manifestTXID.Set(float64(m.TXID))
	r.log.Debug("manifest published", "txid", m.TXID, "seq", m.Seq, "files", len(m.Files))
}

// publishFailed logs a failed publish (each problem once while it lasts)
// and leaves it to the next sync.
func (r *Replicator) publishFailed(ctx context.Context, why string, err error) {
	p := &r.pub
	r.m.publishErrors.Inc()
	if ctx.Err() != nil {
		return
	}
	text := why + ": " + err.Error()
	if text == p.warned {
		return
	}
	p.warned = text
	r.log.Warn("manifest not published; the next sync tries again", "why", why, "replica", r.client.String(), "err", err)
}

// withdrawLocked removes the manifest, so that readers list the replica
// rather than follow a manifest that falls behind it.
func (r *Replicator) withdrawLocked(ctx context.Context) {
	p := &r.pub
	if p.etag == "" && p.current == nil && len(p.inDoubt) == 0 {
		return
	}
	// Only a manifest this writer wrote: a writer paused past its lease
	// must not remove its successor's (storage has no conditional delete,
	// so this narrows the window to the read and the delete).
	got, _, err := storage.ReadAllObject(ctx, r.client, manifest.Name, storage.ReadOptions{IfNoneMatch: p.etag}, manifest.MaxSize)
	switch {
	case errors.Is(err, os.ErrNotExist):
		p.etag, p.current = "", nil
		p.forgetInDoubt(time.Now())
		return
	case err == nil && !p.inDoubtWith(got):
		r.log.Warn("manifest: not removing it: another writer replaced it", "replica", r.client.String())
		return
	case err != nil && !errors.Is(err, storage.ErrNotModified):
		r.log.Warn("manifest: cannot read it to remove it; readers may follow it while it falls behind", "replica", r.client.String(), "err", err)
		return
	}
	if err := r.client.DeleteObjects(ctx, []string{manifest.Name}); err != nil {
		r.log.Warn("manifest: cannot remove it; readers may follow it while it falls behind", "replica", r.client.String(), "err", err)
		return
	}
	p.etag, p.current = "", nil
	p.forgetInDoubt(time.Now())
}

// forgetInDoubt counts the writes in doubt as replaced at now: readers may
// have read one of them until then.
func (p *publisher) forgetInDoubt(now time.Time) {
	for _, d := range p.inDoubt {
		p.replaced = append(p.replaced, replacedManifest{now, d.files})
	}
	clear(p.inDoubt)
	p.inDoubt = p.inDoubt[:0]
}

// withdrawOnce removes, with NoManifest, a manifest that an earlier writer
// left: this writer will not keep it up to date.
func (r *Replicator) withdrawOnce(ctx context.Context) {
	p := &r.pub
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready {
		return
	}
	if err := r.client.DeleteObjects(ctx, []string{manifest.Name}); err != nil {
		r.log.Warn("manifest: cannot remove the manifest an earlier writer left (this writer publishes none); readers may follow it while it falls behind",
			"replica", r.client.String(), "err", err)
		return
	}
	p.ready = true
}
