package vfs

import (
	"context"
	"fmt"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs"

	"github.com/ltxvfs/ltxvfs/storage"

	// Every backend, so that every replica URL scheme works in a DSN.
	_ "github.com/ltxvfs/ltxvfs/storage/file"
	_ "github.com/ltxvfs/ltxvfs/storage/http"
	_ "github.com/ltxvfs/ltxvfs/storage/s3"
)

// Name is the name the VFS is registered under: vfs=ltx.
const Name = "ltx"

// openTimeout bounds the I/O of opening a database (listing the levels,
// reading page indexes): SQLite gives the VFS no context at open.
const openTimeout = time.Minute

func init() {
	vfs.Register(Name, ltxVFS{})
}

type ltxVFS struct{}

var _ vfs.VFSFilename = ltxVFS{}

// tempFlags mark files that SQLite makes for itself (sorter, temp tables,
// statement journals): they go to the OS VFS.
const tempFlags = vfs.OPEN_DELETEONCLOSE | vfs.OPEN_TEMP_DB | vfs.OPEN_TEMP_JOURNAL | vfs.OPEN_SUBJOURNAL | vfs.OPEN_TRANSIENT_DB

func (ltxVFS) Open(name string, flags vfs.OpenFlag) (vfs.File, vfs.OpenFlag, error) {
	// notest // OpenFilename is called instead
	if name == "" {
		return ltxVFS{}.OpenFilename(nil, flags)
	}
	return nil, flags, sqlite3.CANTOPEN
}

func (ltxVFS) OpenFilename(name *vfs.Filename, flags vfs.OpenFlag) (vfs.File, vfs.OpenFlag, error) {
	if name == nil || name.String() == "" || flags&tempFlags != 0 {
		return vfs.Find("os").(vfs.VFSFilename).OpenFilename(name, flags)
	}
	if flags&vfs.OPEN_MAIN_DB == 0 {
		// A journal, WAL or super-journal: a read-only database never needs
		// one, and SQLite must not find one.
		return nil, flags, vfs.SystemError(fmt.Errorf("ltx vfs: %s is read-only: refusing to open %s", name.Database(), name), sqlite3.CANTOPEN)
	}
	f, err := openMain(name)
	if err != nil {
		return nil, flags, vfs.SystemError(fmt.Errorf("ltx vfs: open %s: %w", name, err), sqlite3.CANTOPEN)
	}
	// Read-only for SQLite as well: every write is SQLITE_READONLY before it
	// reaches the file, and BEGIN IMMEDIATE (the ncruces driver's default
	// for db.Begin()) becomes a read transaction instead of asking for the
	// RESERVED lock that Lock refuses.
	return f, flags&^(vfs.OPEN_READWRITE|vfs.OPEN_CREATE) | vfs.OPEN_READONLY, nil
}

func openMain(name *vfs.Filename) (*file, error) {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()

	p, err := parseParams(name.URIParameters(), time.Now())
	if err != nil {
		return nil, err
	}
	var r *replica
	if p.hasReplica {
		if r, err = acquireURL(ctx, p.replica, p); err != nil {
			return nil, fmt.Errorf("replica=%s: %w", storage.Shown(p.replica), err)
		}
	} else if r = acquireName(name.String()); r == nil {
		return nil, fmt.Errorf("%w: give replica=URL (URL-escaped), or bind the name %q with vfs.Attach", errNoReplica, name.String())
	}

	f := &file{rep: r, name: name.String(), budget: p.budget, waitTimeout: p.waitTimeout}
	r.addFile(f)
	switch {
	case p.txid != 0:
		err = f.pinTXID(ctx, p.txid)
		if err != nil {
			err = fmt.Errorf("txid=%s: %w", p.txidRaw, err)
		}
	case p.hasTime:
		err = f.pinTime(ctx, p.at)
		if err != nil {
			err = fmt.Errorf("time=%s: %w", p.atRaw, err)
		}
	default:
		err = f.followLatest(ctx)
	}
	if err == nil && p.hasWait {
		err = f.waitOpen(ctx, p.waitRaw, p.wait)
	}
	if err == nil {
		err = f.check(ctx)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Delete is only asked for journals, which never exist here.
func (ltxVFS) Delete(name string, syncDir bool) error {
	return sqlite3.IOERR_DELETE_NOENT
}

// Access reports that no journal or WAL exists, so SQLite never looks for a
// hot journal to roll back.
func (ltxVFS) Access(name string, flags vfs.AccessFlag) (bool, error) {
	return false, nil
}

// FullPathname keeps the name as given: it is a name for a replica (or an
// attached name), not a path on this machine.
func (ltxVFS) FullPathname(name string) (string, error) {
	return name, nil
}
