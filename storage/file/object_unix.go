//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/ltxvfs/ltxvfs/storage"
)

// objectInfo describes an object from its stat (see the ETag above
// objectRel).
func objectInfo(name string, fi os.FileInfo) storage.ObjectInfo {
	var dev, ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		dev, ino = uint64(st.Dev), uint64(st.Ino)
	}
	return storage.ObjectInfo{
		Name:    name,
		Size:    fi.Size(),
		ETag:    fmt.Sprintf(`"%x-%x-%x-%x"`, dev, ino, fi.Size(), fi.ModTime().UnixNano()),
		ModTime: fi.ModTime().UTC(),
	}
}

// withLock runs fn under an exclusive flock(2) of the lock file of the
// object at rel, which it creates if create is set. Without create, an
// object that has no lock file is not locked: only objects replaced
// conditionally have one. The lock file is never removed (but by
// DeleteAll): a writer that opened it and waits for the lock must lock
// the file the next writer opens, not one unlinked meanwhile.
//
// The lock is polled rather than waited for, so that ctx bounds the wait;
// it is held for a stat and a rename.
func (c *Client) withLock(ctx context.Context, root *os.Root, rel string, create bool, fn func() error) error {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE
	}
	f, err := root.OpenFile(lockRel(rel), flag, 0o644)
	if errors.Is(err, os.ErrNotExist) && !create {
		return fn()
	} else if err != nil {
		return fmt.Errorf("open lock file: %w", err)
	}
	defer f.Close() // drops the lock
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 10*time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return fn()
}
