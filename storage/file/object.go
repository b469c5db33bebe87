package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ltxvfs/ltxvfs/storage"
)

// Objects live in <root>/ltx/ltxvfs/<name> (storage.FileObjectDir), one
// file each, written as LTX files are: to a temp file beside the object,
// fsynced, then renamed into place, so that a reader sees the old object or
// the new one whole. Temp and lock files are hidden (their names start with
// '.', which no object name does) and never listed.
//
// An object's ETag is the quoted hex of its device, inode, size and mtime
// in nanoseconds, read with one stat: cheap, and new for every write. A
// write renames a new file into place, so the inode changes while the old
// object exists; and it sets the mtime to the time of the write, to the
// nanosecond, so that an inode the filesystem reuses later does not bring
// an old ETag back. (On a filesystem that stores mtimes in whole seconds,
// an object rewritten within the second with the same size on a reused
// inode would keep its ETag; the common Linux and macOS filesystems store
// nanoseconds.)
//
// Conditions: IfNoneMatch links the temp file to the object's name, which
// fails if the name exists, so that of two creators exactly one wins.
// IfMatch compares the ETag and renames under an exclusive flock(2) of a
// lock file beside the object (.<base>.lock), so that of two writers that
// read the same version exactly one replaces it. An unconditional write
// or a delete of an object that has a lock file takes the lock too, so
// that it cannot slip between another writer's comparison and its rename;
// the first conditional replacement of an object creates the lock file, so
// an object meant to be replaced conditionally should be written
// conditionally from its creation on (IfNoneMatch, then IfMatch).

// objectRel is the path of an object relative to the root.
func objectRel(name string) string {
	return filepath.Join(storage.FileObjectDir(""), filepath.FromSlash(name))
}

// lockRel is the path of an object's lock file relative to the root.
func lockRel(rel string) string {
	return filepath.Join(filepath.Dir(rel), "."+filepath.Base(rel)+".lock")
}

// ReadObject opens an object. The ETag is the open file's, so it always
// describes the body returned, even if the object is replaced meanwhile.
func (c *Client) ReadObject(ctx context.Context, name string, opts storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	info := storage.ObjectInfo{Name: name}
	if err := ctx.Err(); err != nil {
		return nil, info, err
	}
	if err := storage.CheckObjectName(name); err != nil {
		return nil, info, err
	}
	rel := objectRel(name)
	full := filepath.Join(c.root, rel)
	f, err := c.open(rel, os.O_RDONLY, 0)
	if errors.Is(err, syscall.ENOTDIR) {
		// "a/b" where "a" is an object: no object "a/b" either.
		return nil, info, fmt.Errorf("read object %s: %w: %w", name, os.ErrNotExist, err)
	} else if err != nil {
		return nil, info, fmt.Errorf("read object %s: %w", name, err) // the *PathError names the file and matches os.ErrNotExist
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, info, fmt.Errorf("read object %s: %w", full, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, info, fmt.Errorf("read object %s: not a regular file: %w", full, os.ErrNotExist)
	}
	info = objectInfo(name, fi)
	if opts.IfNoneMatch != "" && opts.IfNoneMatch == info.ETag {
		f.Close()
		return nil, info, fmt.Errorf("read object %s: %w", full, storage.ErrNotModified)
	}
	return f, info, nil
}

// WriteObject writes r to a temp file beside the object, fsyncs it, sets
// its mtime to now, moves it into place as its condition says and fsyncs
// the directory.
func (c *Client) WriteObject(ctx context.Context, name string, r io.Reader, opts storage.WriteOptions) (storage.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, err
	}
	if err := storage.CheckObjectName(name); err != nil {
		return storage.ObjectInfo{}, err
	}
	rel := objectRel(name)
	full := filepath.Join(c.root, rel)
	if opts.IfNoneMatch && opts.IfMatch != "" {
		return storage.ObjectInfo{}, fmt.Errorf("write object %s: both IfNoneMatch and IfMatch given", full)
	}
	fail := func(err error) (storage.ObjectInfo, error) {
		return storage.ObjectInfo{}, fmt.Errorf("write object %s %s: %w", full, opts, err)
	}

	if err := os.MkdirAll(c.root, 0o755); err != nil {
		return fail(err)
	}
	root, err := os.OpenRoot(c.root)
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	relDir := filepath.Dir(rel)
	if err := root.MkdirAll(relDir, 0o755); err != nil {
		return fail(err)
	}
	tmp, tmpRel, err := createTemp(root, rel)
	if err != nil {
		return fail(err)
	}
	closed, placed := false, false
	defer func() {
		if !closed {
			tmp.Close()
		}
		if !placed {
			root.Remove(tmpRel)
		}
	}()
	if _, err := io.Copy(tmp, storage.ContextReader(ctx, r)); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(fmt.Errorf("fsync: %w", err))
	}
	closed = true
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	now := time.Now()
	if err := root.Chtimes(tmpRel, now, now); err != nil {
		return fail(fmt.Errorf("set mtime: %w", err))
	}
	fi, err := root.Stat(tmpRel)
	if err != nil {
		return fail(err)
	}
	info := objectInfo(name, fi) // a rename or a link keeps the inode, and the ETag with it

	if err := ctx.Err(); err != nil {
		return fail(err) // last moment to give up with nothing written
	}
	switch {
	case opts.IfNoneMatch:
		if err := root.Link(tmpRel, rel); errors.Is(err, os.ErrExist) {
			return fail(storage.ErrPreconditionFailed)
		} else if err != nil {
			return fail(err)
		}
		placed = true
		// The object is in place: a temp name that cannot be removed is
		// no reason to report the create failed (a retry would then fail
		// its condition); the next lease holder removes it.
		_ = root.Remove(tmpRel)
	case opts.IfMatch != "":
		err = c.withLock(ctx, root, rel, true, func() error {
			cur, err := root.Stat(rel)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("no such object: %w", storage.ErrPreconditionFailed)
			} else if err != nil {
				return err
			}
			if etag := objectInfo(name, cur).ETag; etag != opts.IfMatch {
				return fmt.Errorf("its ETag is %s: %w", etag, storage.ErrPreconditionFailed)
			}
			return root.Rename(tmpRel, rel)
		})
		if err != nil {
			return fail(err)
		}
		placed = true
	default:
		if err := c.withLock(ctx, root, rel, false, func() error { return root.Rename(tmpRel, rel) }); err != nil {
			return fail(err)
		}
		placed = true
	}
	if err := syncDir(root, relDir); err != nil {
		return fail(fmt.Errorf("fsync directory: %w", err))
	}
	return info, nil
}

// ListObjects walks the object folder (or one folder in it). Hidden files
// (temp and lock files), links and files whose names are not object names
// are skipped.
func (c *Client) ListObjects(ctx context.Context, dir string) ([]storage.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := storage.CheckObjectDir(dir); err != nil {
		return nil, err
	}
	base := filepath.ToSlash(storage.FileObjectDir(""))
	start := base
	if dir != "" {
		start = path.Join(base, dir)
	}
	full := filepath.Join(c.root, filepath.FromSlash(start))
	root, err := os.OpenRoot(c.root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list objects in %s: %w", full, err)
	}
	defer root.Close()

	var infos []storage.ObjectInfo
	err = fs.WalkDir(root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // no such folder, or removed while listed
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == start {
			if !d.IsDir() {
				return fs.SkipDir // an object named like the folder asked for, not a folder
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		name := strings.TrimPrefix(p, base+"/")
		if d.IsDir() || !d.Type().IsRegular() || storage.CheckObjectName(name) != nil {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, os.ErrNotExist) {
			return nil // deleted while listed
		} else if err != nil {
			return err
		}
		infos = append(infos, objectInfo(name, fi))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list objects in %s: %w", full, err)
	}
	// WalkDir goes folder by folder, which is not byte order ("a/b" comes
	// before "a-c" there).
	slices.SortFunc(infos, func(a, b storage.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}

// DeleteObjects removes objects; missing ones are skipped. Lock files stay
// (see withLock).
func (c *Client) DeleteObjects(ctx context.Context, names []string) error {
	rels := make([]string, len(names))
	for i, name := range names {
		if err := storage.CheckObjectName(name); err != nil {
			return err
		}
		rels[i] = objectRel(name)
	}
	return c.deleteRels(ctx, rels, func(root *os.Root, rel string) error {
		return c.withLock(ctx, root, rel, false, func() error {
			fi, err := root.Lstat(rel)
			if errors.Is(err, syscall.ENOTDIR) {
				return nil // "a/b" where "a" is an object
			} else if err != nil {
				return err
			}
			if fi.IsDir() {
				return nil // a folder of objects, not an object
			}
			return root.Remove(rel)
		})
	})
}
