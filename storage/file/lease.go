//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage"
)

var _ lease.Leaser = (*Client)(nil)

// LeaseFileName is the file in a replica's root that carries its lease.
const LeaseFileName = ".ltx-writer.lease"

// leaseInfo is the lease file's content, for the message a refused writer
// gets.
type leaseInfo struct {
	Owner   string    `json:"owner"`
	Expires time.Time `json:"expires"`
}

// AcquireLease locks the replica's lease file with flock(2). The kernel
// holds the lock for as long as the file stays open, so a writer that dies,
// even by SIGKILL, gives the lease up at once, and a second writer, in this
// process or another, is refused at once; the owner and expiry written in
// the file only tell the refused writer who holds it.
func (c *Client) AcquireLease(ctx context.Context, holder lease.Holder, ttl time.Duration) (lease.Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.root, 0o755); err != nil {
		return nil, fmt.Errorf("lease %s: %w", c.root, err)
	}
	f, err := c.open(LeaseFileName, os.O_RDWR|os.O_CREATE, 0o644) // never through a link out of the root
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", c.root, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			var held leaseInfo
			b, _ := io.ReadAll(io.NewSectionReader(f, 0, 1<<16))
			if json.Unmarshal(b, &held) == nil && held.Owner != "" {
				return nil, fmt.Errorf("%w: %s is held by %s (renewed until %s)", lease.ErrHeld, c, held.Owner, held.Expires.UTC().Format(time.RFC3339))
			}
			return nil, fmt.Errorf("%w: %s is locked by another process", lease.ErrHeld, c)
		}
		if errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.ENOSYS) {
			return nil, fmt.Errorf("lease %s: file locks: %w", c.root, errors.ErrUnsupported)
		}
		return nil, fmt.Errorf("lease %s: lock: %w", c.root, err)
	}
	l := &fileLease{f: f, owner: holder.Owner}
	if err := l.Renew(ctx, ttl); err != nil {
		f.Close()
		return nil, err
	}
	c.removeStaleTemps()
	return l, nil
}

// removeStaleTemps removes the temp files (see createTemp) that writers
// killed in the middle of an upload left in the level directories and the
// object folder: the
// lease holder is the only writer, so no temp file there is in use, and
// without this every crash during a snapshot upload would leak a whole
// database's worth of disk. Best effort: a file that cannot be removed
// stays, as before.
func (c *Client) removeStaleTemps() {
	root, err := os.OpenRoot(c.root)
	if err != nil {
		return
	}
	defer root.Close()
	removeStaleObjectTemps(root)
	levels, err := fs.ReadDir(root.FS(), "ltx")
	if err != nil {
		return
	}
	for _, level := range levels {
		if !level.IsDir() {
			continue
		}
		dir := path.Join("ltx", level.Name())
		entries, err := fs.ReadDir(root.FS(), dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.Type().IsRegular() && isTempName(e.Name()) {
				_ = root.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// isTempName reports whether name is one createTemp makes:
// .<minTXID>-<maxTXID>.ltx.<random>.tmp.
func isTempName(name string) bool {
	rest, ok := strings.CutPrefix(name, ".")
	if !ok {
		return false
	}
	rest, ok = strings.CutSuffix(rest, ".tmp")
	if !ok {
		return false
	}
	base, _, ok := strings.Cut(rest, ".ltx.")
	if !ok {
		return false
	}
	_, _, err := ltx.ParseFilename(base + ".ltx")
	return err == nil
}

type fileLease struct {
	mu      sync.Mutex
	f       *os.File
	owner   string
	expires time.Time
}

func (l *fileLease) Renew(ctx context.Context, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("%w: lease was released", lease.ErrHeld)
	}
	expires := time.Now().Add(ttl)
	b, err := json.Marshal(leaseInfo{Owner: l.owner, Expires: expires})
	if err != nil {
		return err
	}
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("renew lease %s: %w", l.f.Name(), err)
	}
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("renew lease %s: %w", l.f.Name(), err)
	}
	l.expires = expires
	return nil
}

// TookOverFrom is always nil: the kernel drops the lock of a writer that
// exits, so there is never an unexpired lease of an exited writer to take
// over.
func (l *fileLease) TookOverFrom() *lease.Holder { return nil }

func (l *fileLease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Release closes the lease file, which drops the lock. The file stays: a
// writer waiting for it only ever needs the lock.
func (l *fileLease) Release(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close()
	l.f = nil
	return err
}

// removeStaleObjectTemps removes the temp files of object writes: hidden
// files ending in .tmp (no object name starts with '.').
func removeStaleObjectTemps(root *os.Root) {
	base := filepath.ToSlash(storage.FileObjectDir(""))
	_ = fs.WalkDir(root.FS(), base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() && strings.HasPrefix(d.Name(), ".") && strings.HasSuffix(d.Name(), ".tmp") {
			_ = root.Remove(filepath.FromSlash(p))
		}
		return nil
	})
}
