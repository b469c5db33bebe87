//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package file

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ltxvfs/ltxvfs/storage"
)

// objectInfo describes an object from its stat. Without an inode number
// the ETag is the size and the mtime in nanoseconds, which WriteObject
// sets.
func objectInfo(name string, fi os.FileInfo) storage.ObjectInfo {
	return storage.ObjectInfo{
		Name:    name,
		Size:    fi.Size(),
		ETag:    fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()),
		ModTime: fi.ModTime().UTC(),
	}
}

// withLock refuses conditional replacement: file locks are not available
// to the file backend on this system. Other writes need no lock, as no
// lock file is ever made here.
func (c *Client) withLock(_ context.Context, _ *os.Root, rel string, create bool, fn func() error) error {
	if create {
		return fmt.Errorf("replace %s conditionally: file locks: %w", rel, errors.ErrUnsupported)
	}
	return fn()
}
