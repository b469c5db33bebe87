package vfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/index"
	"github.com/ltxvfs/ltxvfs/pagecache"
)

// file is one connection's main database file. SQLite calls it from one
// goroutine at a time (the connection's), so its own fields need no lock;
// what it shares lives in the replica.
type file struct {
	rep  *replica
	name string
	conn *sqlite3.Conn // from SetDB; its interrupt context bounds every fetch

	following bool           // follows the newest TXID (counted by the poller)
	pinned    *index.Version // the connection's pin when not following
	lock      vfs.LockLevel
	tx        *index.Version // the version of the open read transaction
	txTXID    atomic.Uint64  // tx's TXID while a transaction is open, for the metrics

	page1At *index.Version // page1 is page 1 as patched for this version
	page1   []byte
	zero    []byte    // a page of zeros: the lock page, holes
	ra      readahead // this connection's reads, to read ahead (readahead.go)
	walk    descent   // this connection's walk down a B-tree (interior.go)
	keys    keyRun    // this connection's reads in key order, to read ahead (keyorder.go)
	joins   joinRun   // this connection's lookups of a join, to read ahead (join.go)
	level   leafLevel // this connection's misses of index leaves, to read small indexes whole (leaflevel.go)
	closed  bool

	// What statements cost (stats.go): the open one, the last one, and
	// the context that carries the open one.
	budget    budget
	stmt      *statement
	lastStmt  *statement
	stmtFor   context.Context // the interrupt context stmtCtx was made from
	stmtCtxOf *statement
	stmtCtx   context.Context

	// waitTimeout bounds a wait for a read-your-writes token (wait.go);
	// DefaultWaitTimeout if 0.
	waitTimeout time.Duration
}

// The file implements exactly the optional interfaces it uses.
var (
	_ vfs.FileLockState       = (*file)(nil)
	_ vfs.FilePragma          = (*file)(nil)
	_ interface{ SetDB(any) } = (*file)(nil)
)

// SetDB receives the connection (SQLITE_FCNTL_PDB), whose interrupt
// context (set by database/sql from the query's context) bounds fetches.
func (f *file) SetDB(db any) {
	if c, ok := db.(*sqlite3.Conn); ok {
		f.conn = c
	}
}

func (f *file) context() context.Context {
	if f.conn != nil {
		if ctx := f.conn.GetInterrupt(); ctx != nil {
			return ctx
		}
	}
	return context.Background()
}

// view is the version this connection reads now: the open transaction's,
// else its pin, else the latest.
func (f *file) view() *index.Version {
	switch {
	case f.tx != nil:
		return f.tx
	case f.pinned != nil:
		return f.pinned
	default:
		return f.rep.latest()
	}
}

// followLatest makes the connection follow the newest TXID.
func (f *file) followLatest(ctx context.Context) error {
	if _, err := f.rep.refresh(ctx); err != nil {
		return err
	}
	if !f.following {
		f.rep.follow()
		f.following = true
	}
	f.pinned = nil
	return nil
}

// pinTXID pins the connection at txid.
func (f *file) pinTXID(ctx context.Context, txid ltx.TXID) error {
	v, err := f.rep.idx.At(ctx, txid)
	if err != nil {
		return err
	}
	f.pinned = v
	if f.following {
		f.following = false
		f.rep.unfollow()
	}
	return nil
}

// pinTime pins the connection at the newest TXID committed at or before t.
func (f *file) pinTime(ctx context.Context, t time.Time) error {
	txid, err := f.rep.idx.TXIDAt(ctx, t)
	if err != nil {
		return err
	}
	return f.pinTXID(ctx, txid)
}

// check reads page 1 of the view, so that a replica that is not a SQLite
// database fails at open, and SQLite's first read of the header is served
// from the cache.
func (f *file) check(ctx context.Context) error {
	_, err := f.page(ctx, 1)
	return err
}

func (f *file) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	f.tx = nil
	f.ra.endTransaction()
	f.endStatement()
	f.rep.removeFile(f)
	if f.following {
		f.following = false
		f.rep.unfollow()
	}
	forgetErr(f.errKey())
	f.rep.release()
	return nil
}

// ReadAt serves SQLite's reads: whole pages, and parts of page 1 (the
// header) before and at the start of each transaction.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if f.page1At != nil && f.page1At == f.tx && off+int64(len(p)) <= int64(len(f.page1)) {
		// The header, read at the start of each transaction for the change
		// counter: page 1 as patched for this version.
		if m := f.rep.m; m != nil {
			m.pageReads.Inc()
		}
		return copy(p, f.page1[off:]), nil
	}
	ctx := f.queryContext()
	n := 0
	for n < len(p) {
		v := f.view()
		ps := int64(v.PageSize())
		if off >= int64(v.Commit())*ps {
			break // past the end: SQLite zero-fills a short read
		}
		pgno := uint32(off/ps) + 1
		data, err := f.page(ctx, pgno)
		if err != nil {
			return n, f.failed(ctx, err)
		}
		c := copy(p[n:], data[off%ps:])
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// page returns page pgno of the current view. A file that vanished from
// storage (retention removed it after the version was built) is answered by
// rebuilding the same TXID from a fresh listing and trying once more, never
// by another TXID's page.
func (f *file) page(ctx context.Context, pgno uint32) ([]byte, error) {
	v := f.view()
	data, err := f.fetch(ctx, v, pgno)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || ctx.Err() != nil {
		return data, err
	}
	if f.stmt != nil {
		now := time.Now()
		f.stmt.waited(now, now, f.rep.m) // listings, then page indexes: one wait at least
	}
	nv, rerr := f.rep.replan(ctx, v)
	if rerr != nil {
		return nil, fmt.Errorf("%w; TXID %d cannot be rebuilt from the files left: %w", err, v.TXID(), rerr)
	}
	if f.tx == v {
		f.tx = nv
	}
	if f.pinned == v {
		f.pinned = nv
	}
	return f.fetch(ctx, nv, pgno)
}

func (f *file) fetch(ctx context.Context, v *index.Version, pgno uint32) ([]byte, error) {
	if m := f.rep.m; m != nil {
		m.pageReads.Inc()
	}
	if pgno == 1 && f.page1At == v {
		return f.page1, nil
	}
	e, ok := v.Lookup(pgno)
	if !ok {
		// The lock page, or a page no file holds: a restored database has
		// zeros there too.
		if len(f.zero) != int(v.PageSize()) {
			f.zero = make([]byte, v.PageSize())
		}
		return f.zero, nil
	}
	ref := pageRef(e, pgno, v.PageSize())
	f.ra.observe(ctx, f.rep, v, ref.Key)
	if f.ra.run == raMinRun && f.stmt != nil {
		f.stmt.scans()
	}
	f.rep.walk.resume(ctx, f.rep)
	data, how, err := f.rep.cache.Get(ctx, ref)
	if f.stmt != nil {
		f.stmt.looked(how, err, f.rep.m)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s at TXID %d: %w", f.name, v.TXID(), err) // err names the file and page
	}
	f.walk.note(ctx, f.rep, v, ref.Key, data, how.From == pagecache.FromMemory)
	held := how.From == pagecache.FromMemory
	f.keys.observe(ctx, f.rep, v, ref.Key, data, held, f.ra.run >= raMinRun, &f.ra.scope)
	f.joins.observe(ctx, f.rep, v, ref.Key, data, held, f.ra.run >= raMinRun || f.keys.run >= keyMinRun, f.usable(v), &f.ra.scope)
	f.level.observe(ctx, f.rep, v, &f.joins, ref.Key, data, held)
	if pgno == 1 {
		if !bytes.HasPrefix(data, sqliteMagic) {
			return nil, fmt.Errorf("page 1 of %s at TXID %d is not a SQLite database header", e.File.Name(), v.TXID())
		}
		f.page1At, f.page1 = v, patchHeader(data, v)
		return f.page1, nil
	}
	return data, nil
}

// usable is the usable size of v's pages: the page size less the bytes
// page 1's header reserves at the end of each page.
func (f *file) usable(v *index.Version) int {
	ps := int(v.PageSize())
	if len(f.page1) > hdrSize {
		ps -= int(f.page1[20])
	}
	return ps
}

// pageRef is what the page cache needs to read page pgno from the entry
// e: the frame's place, and its file to check the frame's bytes before
// they are decoded.
func pageRef(e index.Entry, pgno, pageSize uint32) pagecache.Ref {
	return pagecache.Ref{
		Key:      pagecache.Key{File: fileKey(e.File), Pgno: pgno},
		Offset:   e.Offset,
		Size:     e.Size,
		PageSize: pageSize,
		Check:    e.File,
	}
}

func fileKey(f *index.File) pagecache.FileKey {
	return pagecache.FileKey{Level: f.Info.Level, MinTXID: f.Info.MinTXID, MaxTXID: f.Info.MaxTXID, Checksum: f.Trailer.FileChecksum}
}

// failed turns a fetch error into what SQLite should see: INTERRUPT when the
// query's context is done, else the error, kept for the connection so that
// its message reaches the caller (see keptErrs).
func (f *file) failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return sqlite3.INTERRUPT
	}
	var over *BudgetError
	if errors.As(err, &over) {
		// The budget's own message, not the page read it stopped.
		err = over
		if m := f.rep.m; m != nil {
			m.budgetStops.WithLabelValues(over.Param).Inc()
		}
	}
	if _, loaded := keptErrs.Swap(f.errKey(), err); !loaded {
		keptCount.Add(1)
	}
	return err
}

// keptErrs holds, per connection, the last read error of the transaction.
// ncruces reports an I/O error's Go error (SysError) only if no VFS call
// after it succeeded; but SQLite unlocks the file before the statement
// returns, and a successful Unlock would clear it. So Unlock hands the kept
// error back with result code OK, which leaves it in place; the next
// transaction (Lock) forgets it.
var keptErrs sync.Map // *sqlite3.Conn (or *file before SetDB) -> error

// keptCount is the number of errors in keptErrs: while it is 0, as it is
// when nothing failed, a transaction does not touch the map.
var keptCount atomic.Int64

func forgetErr(key any) {
	if keptCount.Load() == 0 {
		return
	}
	if _, loaded := keptErrs.LoadAndDelete(key); loaded {
		keptCount.Add(-1)
	}
}

func (f *file) errKey() any {
	if f.conn != nil {
		return f.conn
	}
	return f
}

func (f *file) keptErr() error {
	if keptCount.Load() == 0 {
		return nil
	}
	if err, ok := keptErrs.Load(f.errKey()); ok {
		return vfs.SystemError(err.(error), sqlite3.ErrorCode(0))
	}
	return nil
}

// Lock pins the version of a read transaction at SHARED; there is nothing
// above SHARED for a read-only database.
func (f *file) Lock(lock vfs.LockLevel) error {
	if lock >= vfs.LOCK_RESERVED {
		return sqlite3.READONLY
	}
	if f.lock == vfs.LOCK_NONE && lock == vfs.LOCK_SHARED {
		v := f.view()
		if v == nil {
			return sqlite3.IOERR_LOCK // notest // a version exists from open on
		}
		f.tx = v
		f.txTXID.Store(uint64(v.TXID()))
		forgetErr(f.errKey())
		f.beginStatement()
	}
	f.lock = lock
	return nil
}

// Unlock releases the transaction's version at NONE, and ends the reads
// ahead its queries started.
func (f *file) Unlock(lock vfs.LockLevel) error {
	if lock == vfs.LOCK_NONE {
		f.ra.endTransaction()
		f.keys.endTransaction()
		f.joins.endTransaction()
		f.endStatement()
		f.tx = nil
		f.txTXID.Store(0)
	}
	f.lock = min(f.lock, lock)
	return f.keptErr()
}

func (f *file) CheckReservedLock() (bool, error) { return false, nil }

func (f *file) LockState() vfs.LockLevel { return f.lock }

// Size is the pinned Commit × page size: pages above Commit do not exist.
func (f *file) Size() (int64, error) {
	v := f.view()
	return int64(v.Commit()) * int64(v.PageSize()), nil
}

func (f *file) WriteAt(p []byte, off int64) (int, error) { return 0, sqlite3.READONLY }

func (f *file) Truncate(size int64) error { return sqlite3.READONLY }

func (f *file) Sync(flags vfs.SyncFlag) error { return nil }

func (f *file) SectorSize() int { return 0 }

// DeviceCharacteristics claims nothing: in particular not IOCAP_IMMUTABLE,
// which would stop SQLite from locking (and so from pinning a TXID per
// transaction) and from noticing new TXIDs.
func (f *file) DeviceCharacteristics() vfs.DeviceCharacteristic { return 0 }
