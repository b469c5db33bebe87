package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
)

// A replica whose writer publishes a manifest (see package manifest) is
// followed from it: one conditional GET per Update (a 304 when nothing
// changed), and the page indexes of new files from their hints or inline,
// in one parallel round; no listing at all. A replica without one
// (Litestream's), or whose manifest does not check out or disagrees with
// the files it names, is listed, as before, and the manifest looked for
// again every manifestRecheck.

// manifestRecheck is how often a replica found without a usable manifest
// is looked at again for one.
const manifestRecheck = time.Minute

// staleAfter is how long a manifest may stay unchanged before the index
// checks, with one read, that no L0 file follows its TXID: a writer that
// does not publish manifests (Litestream, after a switch back) would
// otherwise leave followers on the last one forever.
var staleAfter = time.Minute

// errDisagrees: a manifest names a file that is not there, or not as it
// says.
var errDisagrees = errors.New("the manifest disagrees with the files it names")

// manifestState is what the index knows of the replica's manifest.
type manifestState struct {
	mu      sync.Mutex
	last    *manifest.Manifest // the newest accepted
	etag    string             // of the last manifest read, for If-None-Match
	absent  bool               // none, or none usable: list
	checked time.Time          // when absent was decided
	warned  string             // the last problem logged (each once)

	advanced time.Time // when last's TXID last grew
	probed   time.Time // when a file after last's TXID was last looked for

	// unrelated is set when a manifest that named the replica's history
	// is gone (or no longer usable): the files listed now may be another
	// history's (a replica begun again, whose manifest comes later), so
	// nothing listed is related to the versions built before (see
	// relatable), and the manifest is looked for at every update.
	unrelated bool
}

// relatable reports whether versions built from a listing may reuse what
// earlier versions read (extend them, keep their pages, move cached pages
// between files): not while unrelated.
func (x *Index) relatable() bool {
	x.mf.mu.Lock()
	defer x.mf.mu.Unlock()
	return !x.mf.unrelated
}

// FromManifest reports whether the latest version came from the
// replica's manifest (so that a follower polls the manifest only).
func (x *Index) FromManifest() bool {
	x.mf.mu.Lock()
	defer x.mf.mu.Unlock()
	return !x.mf.absent && x.mf.last != nil
}

// lastManifest is the newest manifest accepted, if the replica has one.
func (x *Index) lastManifest() *manifest.Manifest {
	x.mf.mu.Lock()
	defer x.mf.mu.Unlock()
	if x.mf.absent {
		return nil
	}
	return x.mf.last
}

// warnOnce logs a manifest problem, once while it lasts.
func (x *Index) warnOnce(msg string, err error) {
	x.mf.mu.Lock()
	text := msg + ": " + err.Error()
	repeat := x.mf.warned == text
	x.mf.warned = text
	x.mf.mu.Unlock()
	if !repeat {
		x.log.Warn("ltx index: "+msg+"; listing the replica instead", "replica", x.client.String(), "err", err)
	}
}

// fromManifest brings the latest version up to date from the manifest.
// handled is false when the replica must be listed instead (no manifest,
// one that does not check out or disagrees with its files); an error with
// handled true is the manifest's read failing (the poll fails, as a
// listing would).
func (x *Index) fromManifest(ctx context.Context) (v *Version, handled bool, err error) {
	st := &x.mf
	st.mu.Lock()
	if st.absent && time.Since(st.checked) < manifestRecheck && !st.unrelated {
		st.mu.Unlock()
		return nil, false, nil
	}
	etag := ""
	if x.Latest() != nil && !st.absent {
		etag = st.etag
	}
	st.mu.Unlock()

	b, info, err := storage.ReadAllObject(ctx, x.client, manifest.Name, storage.ReadOptions{IfNoneMatch: etag}, manifest.MaxSize)
	switch {
	case errors.Is(err, storage.ErrNotModified):
		if err := x.checkStale(ctx); err != nil {
			x.markAbsent(err)
			return nil, false, nil
		}
		return x.Latest(), true, nil
	case errors.Is(err, os.ErrNotExist):
		x.markAbsent(nil)
		return nil, false, nil
	case err != nil:
		return nil, true, fmt.Errorf("read the manifest of %s: %w", x.client, err)
	}
	m, err := manifest.Decode(b)
	if err != nil {
		x.markAbsent(fmt.Errorf("manifest of %s: %w", x.client, err))
		return nil, false, nil
	}
	st.mu.Lock()
	begun := m.BegunAgain(st.last)
	stale := st.last != nil && !m.Newer(st.last) && !begun
	st.etag = info.ETag // a cache that keeps serving this copy answers 304 from now on
	st.mu.Unlock()
	if begun {
		x.log.Warn("ltx index: the replica was begun again (its manifest names another history): its TXIDs now name other commits; following the new history, read afresh",
			"replica", x.client.String(), "txid", m.TXID.String())
	}
	if stale {
		// An older copy (a cache's): never go back.
		if cur := x.Latest(); cur != nil {
			return cur, true, nil
		}
	}
	v, err = x.buildFromManifest(ctx, m, begun)
	if errors.Is(err, errDisagrees) {
		x.markAbsent(err)
		return nil, false, nil
	} else if err != nil {
		return nil, true, err
	}
	st.mu.Lock()
	if st.last == nil || m.TXID > st.last.TXID || begun {
		st.advanced = time.Now()
	}
	st.last, st.absent, st.warned, st.unrelated = m, false, "", false
	st.mu.Unlock()
	return v, true, nil
}

// checkStale looks, once in a while, for an L0 file after the TXID of a
// manifest that has not changed for staleAfter; finding one means the
// manifest is stale, and the replica must be listed.
func (x *Index) checkStale(ctx context.Context) error {
	st := &x.mf
	st.mu.Lock()
	m := st.last
	due := m != nil && time.Since(st.advanced) >= staleAfter && time.Since(st.probed) >= staleAfter
	if due {
		st.probed = time.Now()
	}
	st.mu.Unlock()
	if !due {
		return nil
	}
	next := m.TXID + 1
	rc, err := x.client.OpenLTXFile(ctx, 0, next, next, 0, 1)
	if err != nil {
		return nil // not there (or unknown: the next check tells)
	}
	rc.Close()
	return fmt.Errorf("the manifest of %s is stale: it ends at TXID %s, and %s exists", x.client, m.TXID, storage.FileName(0, next, next))
}

// readManifest reads and decodes the manifest as it is now, without
// taking it as the latest.
func (x *Index) readManifest(ctx context.Context) (*manifest.Manifest, error) {
	b, _, err := storage.ReadAllObject(ctx, x.client, manifest.Name, storage.ReadOptions{}, manifest.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("read the manifest of %s: %w", x.client, err)
	}
	return manifest.Decode(b)
}

// markAbsent records that the replica has no usable manifest (why: nil
// when there is none at all).
func (x *Index) markAbsent(why error) {
	x.mf.mu.Lock()
	x.mf.absent, x.mf.checked, x.mf.etag = true, time.Now(), ""
	if x.mf.last != nil && x.mf.last.History != "" {
		x.mf.unrelated = true
	}
	x.mf.mu.Unlock()
	if why != nil {
		x.warnOnce("the manifest cannot be used", why)
	}
}

// buildFromManifest builds the version of a manifest's TXID from the files
// it names, as Update does from a listing (extending the latest version
// when the plan continues it). After a replica was begun again (begun),
// nothing of the latest version is kept: its TXIDs named other commits.
func (x *Index) buildFromManifest(ctx context.Context, m *manifest.Manifest, begun bool) (*Version, error) {
	infos, err := x.cat.loadManifest(ctx, m.Files)
	if err != nil {
		return nil, err
	}
	cur, rel := x.Latest(), x.Latest()
	if begun {
		rel = nil
	} else if cur != nil && m.TXID < cur.TXID() {
		return cur, nil // a listing went further meanwhile
	}
	return x.advance(ctx, infos, infos, cur, rel, " from its manifest")
}

// manifestPlan returns the files of the manifest's plan that rebuild txid
// (a prefix of it), or nil when the manifest has none ending there.
func manifestPlan(m *manifest.Manifest, txid ltx.TXID) []manifest.File {
	if m == nil {
		return nil
	}
	for i, f := range m.Files {
		if f.MaxTXID == txid {
			return m.Files[:i+1]
		}
	}
	return nil
}

// loadManifest makes sure the catalog holds the page index of every file
// of a manifest: from its inline index, from its hint (read by name, all
// at once), or, for a file without either, from the file. It returns the
// files as infos. A hint that is missing or damaged costs a read of the
// file itself; a file that is missing or not what the manifest says is
// errDisagrees.
func (c *catalog) loadManifest(ctx context.Context, files []manifest.File) ([]*ltx.FileInfo, error) {
	infos := make([]*ltx.FileInfo, len(files))
	page1 := page1File(files)
	g, gctx := errgroup.WithContext(ctx)
	for i, f := range files {
		info := f.Info()
		infos[i] = info
		c.mu.Lock()
		_, known := c.indexes[keyOf(info)]
		c.mu.Unlock()
		if known {
			continue
		}
		g.Go(func() error {
			fx, err := c.manifestIndex(gctx, f, info)
			if err != nil {
				return err
			}
			if i == page1 {
				c.readPage1(gctx, fx)
			}
			c.add(fx)
			return nil
		})
	}
	return infos, g.Wait()
}

// page1File is the index of the newest file of a plan whose inline index
// holds page 1, or -1: SQLite's first read at open is page 1, and reading
// its frame in the round that reads the hints saves the open a round trip.
// (A file with a hint brings its page 1 with the hint's head frames: the
// search stops at the newest such file.)
func page1File(files []manifest.File) int {
	for i := len(files) - 1; i >= 0; i-- {
		h, err := files[i].InlineIndex()
		if err != nil || h == nil {
			return -1
		}
		if _, ok := slices.BinarySearch(h.Pgnos, 1); ok {
			return i
		}
	}
	return -1
}

// readPage1 reads the frame of page 1 of a small file, checked against its
// frame sum, as a frame read with its page index: a failure only costs the
// read later.
func (c *catalog) readPage1(ctx context.Context, fx *fileIndex) {
	i, ok := slices.BinarySearch(fx.pgnos, 1)
	if !ok || (c.held != nil && c.held(fx.file, 1)) {
		return
	}
	off := int64(ltx.HeaderSize)
	for _, size := range fx.sizes[:i] {
		off += int64(size)
	}
	frame, err := readRange(ctx, c.client, c.sem, &fx.file.Info, off, int64(fx.sizes[i]))
	if err != nil || fx.file.CheckFrame(1, frame) != nil {
		return
	}
	fx.pending.Store(&pendingFrames{hint: []Frame{{Pgno: 1, Data: frame}}})
}

// manifestIndex builds the page index of one file a manifest names.
func (c *catalog) manifestIndex(ctx context.Context, f manifest.File, info *ltx.FileInfo) (*fileIndex, error) {
	var warn error
	if h, err := f.InlineIndex(); err != nil || h != nil {
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errDisagrees, f.Name(), err) // Decode checked it: never
		}
		fx, err := indexFromHint(info, h)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errDisagrees, err)
		}
		fx.pending.Store(&pendingFrames{})
		return fx, nil
	}
	if f.HintSize > 0 {
		name := manifest.HintName(f.Source())
		h, err := readHint(ctx, c.client, c.sem, c.objects, name)
		if err == nil {
			err = h.Describes(f.Source())
		}
		if err == nil {
			fx, err := indexFromHint(info, h)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", errDisagrees, err)
			}
			fx.pending.Store(&pendingFrames{hint: fx.hintFrames(h)})
			return fx, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		warn = err // read the file itself
	}
	fx, err := readFileIndex(ctx, c.client, c.sem, info)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%w: %s is missing", errDisagrees, f.Name())
	case errors.Is(err, ltx.ErrInvalidFile) || errors.Is(err, ltx.ErrChecksumMismatch) || errors.Is(err, io.ErrUnexpectedEOF):
		// Not a file of the size the manifest gives, or damaged: a
		// listing tells which (and names a damaged file in its error).
		return nil, fmt.Errorf("%w: %v", errDisagrees, err)
	case err != nil:
		return nil, err
	}
	if got := fx.file.Trailer.FileChecksum; got != f.Checksum {
		return nil, fmt.Errorf("%w: %s has file checksum %s, the manifest says %s", errDisagrees, f.Name(), got, f.Checksum)
	}
	if warn != nil {
		fx.pending.Load().hintErr = fmt.Errorf("hint of %s: %w", f.Name(), warn)
	}
	return fx, nil
}
