package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

func init() {
	storage.Register("file", func(_ context.Context, u *storage.URL) (storage.Client, error) {
		return New(u.Path), nil
	})
}

var _ storage.AllLister = (*Client)(nil)

// Client is a replica in a local directory.
type Client struct {
	root string
}

// New returns a client for the replica rooted at dir. The directory is
// created on the first write.
func New(dir string) *Client {
	return &Client{root: filepath.Clean(dir)}
}

// Root is the replica's directory.
func (c *Client) Root() string { return c.root }

func (c *Client) String() string { return "file://" + filepath.ToSlash(c.root) }

// LTXFiles lists a level. The CreatedAt of each file is its mtime, which
// WriteLTXFile (and Litestream) set to the LTX header's timestamp.
func (c *Client) LTXFiles(ctx context.Context, level int, seek ltx.TXID, _ bool) (ltx.FileIterator, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := storage.CheckLevel(level); err != nil {
		return nil, err
	}
	infos, err := c.listLevel(level, seek)
	if err != nil {
		return nil, err
	}
	return ltx.NewFileInfoSliceIterator(infos), nil
}

// AllLTXFiles lists levels 0 through SnapshotLevel, one directory after
// another (see storage.AllLister): a listing costs no request here, but
// the VFS's counters and metrics then see one.
func (c *Client) AllLTXFiles(ctx context.Context, _ bool) ([]*ltx.FileInfo, error) {
	var all []*ltx.FileInfo
	for level := 0; level <= storage.SnapshotLevel; level++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		infos, err := c.listLevel(level, 0)
		if err != nil {
			return nil, err
		}
		all = append(all, infos...)
	}
	return all, nil
}

// listLevel lists the files of a level at or above seek, by name, which
// is TXID order.
func (c *Client) listLevel(level int, seek ltx.TXID) ([]*ltx.FileInfo, error) {
	dir := storage.FileLevelDir(c.root, level)
	entries, err := c.readDir(storage.FileLevelDir("", level))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}

	infos := make([]*ltx.FileInfo, 0, len(entries))
	for _, e := range entries {
		minTXID, maxTXID, err := ltx.ParseFilename(e.Name())
		if err != nil || !e.Type().IsRegular() || minTXID < seek {
			continue // temp files and foreign files are not part of the replica
		}
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted by retention while we listed
		} else if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		infos = append(infos, &ltx.FileInfo{
			Level:     level,
			MinTXID:   minTXID,
			MaxTXID:   maxTXID,
			Size:      fi.Size(),
			CreatedAt: fi.ModTime().UTC(),
		})
	}
	return infos, nil
}

// OpenLTXFile opens a ranged reader on one file.
func (c *Client) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := storage.CheckLevel(level); err != nil {
		return nil, err
	}
	name := storage.FilePath(c.root, level, minTXID, maxTXID)
	if offset < 0 || size < 0 {
		return nil, fmt.Errorf("open %s: invalid range offset=%d size=%d", name, offset, size)
	}
	f, err := c.open(storage.FilePath("", level, minTXID, maxTXID), os.O_RDONLY, 0)
	if err != nil {
		return nil, err // *PathError names the file and matches os.ErrNotExist
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if offset >= fi.Size() && !(offset == 0 && size == 0) {
		f.Close()
		return nil, fmt.Errorf("open %s: range starts at %d, past the end of the %d-byte file", name, offset, fi.Size())
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
	}
	return storage.ExactReader(f, size, name), nil
}

// WriteLTXFile writes r to a temp file beside the destination, fsyncs it,
// sets its mtime to the header timestamp, links it into place and fsyncs
// the directory. A link, unlike a rename, fails when the name exists: of
// two writers of one name exactly one creates it, and the other compares
// what it wrote with what is there (see storage.Client).
func (c *Client) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := storage.CheckLevel(level); err != nil {
		return nil, err
	}
	name := storage.FilePath(c.root, level, minTXID, maxTXID)

	br := bufio.NewReaderSize(r, ltx.HeaderSize)
	peek, err := br.Peek(ltx.HeaderSize)
	if err != nil {
		return nil, fmt.Errorf("write %s: read LTX header: %w", name, err)
	}
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(peek); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	if hdr.MinTXID != minTXID || hdr.MaxTXID != maxTXID {
		return nil, fmt.Errorf("write %s: header holds TXIDs %s-%s", name, hdr.MinTXID, hdr.MaxTXID)
	}
	timestamp := time.UnixMilli(hdr.Timestamp).UTC()

	if err := os.MkdirAll(c.root, 0o755); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	root, err := os.OpenRoot(c.root)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	defer root.Close()
	rel := storage.FilePath("", level, minTXID, maxTXID)
	relDir := filepath.Dir(rel)
	if err := root.MkdirAll(relDir, 0o755); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	tmp, tmpRel, err := createTemp(root, rel)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			root.Remove(tmpRel)
		}
	}()

	n, err := io.Copy(tmp, storage.ContextReader(ctx, br))
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("write %s: fsync: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	// The mtime is set before the rename so that no listing ever sees the
	// file with another timestamp.
	if err := root.Chtimes(tmpRel, timestamp, timestamp); err != nil {
		return nil, fmt.Errorf("write %s: set mtime: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err) // last moment to give up with nothing written
	}
	if err := root.Link(tmpRel, rel); errors.Is(err, os.ErrExist) {
		if err := c.sameAsTemp(ctx, root, tmpRel, level, minTXID, maxTXID); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	// The file is in place: a temp name that cannot be removed is no
	// reason to report the write failed; the next lease holder removes it.
	committed = true
	_ = root.Remove(tmpRel)
	if err := syncDir(root, relDir); err != nil {
		return nil, fmt.Errorf("write %s: fsync directory: %w", name, err)
	}
	return &ltx.FileInfo{
		Level:     level,
		MinTXID:   minTXID,
		MaxTXID:   maxTXID,
		Size:      n,
		CreatedAt: timestamp,
	}, nil
}

// sameAsTemp compares the file that took the name with the temp file
// written for it: nil if they hold the same bytes, an error wrapping
// storage.ErrFileExists if not.
func (c *Client) sameAsTemp(ctx context.Context, root *os.Root, tmpRel string, level int, minTXID, maxTXID ltx.TXID) error {
	tmp, err := root.Open(tmpRel)
	if err != nil {
		return err
	}
	defer tmp.Close()
	same, err := storage.SameLTXFile(ctx, c, level, minTXID, maxTXID, tmp)
	if err != nil {
		return err
	}
	if !same {
		return storage.ErrFileExists
	}
	return nil
}

// DeleteLTXFiles removes files; missing ones are skipped.
func (c *Client) DeleteLTXFiles(ctx context.Context, files []*ltx.FileInfo) error {
	rels := make([]string, len(files))
	for i, info := range files {
		if err := storage.CheckLevel(info.Level); err != nil {
			return err
		}
		rels[i] = storage.FilePath("", info.Level, info.MinTXID, info.MaxTXID)
	}
	return c.deleteRels(ctx, rels, func(root *os.Root, rel string) error { return root.Remove(rel) })
}

// deleteRels removes each path of rels (relative to the root) with remove,
// skipping those already gone, then fsyncs their directories.
func (c *Client) deleteRels(ctx context.Context, rels []string, remove func(root *os.Root, rel string) error) error {
	root, err := os.OpenRoot(c.root)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no replica: nothing to delete
	} else if err != nil {
		return fmt.Errorf("delete from %s: %w", c.root, err)
	}
	defer root.Close()
	dirs := map[string]bool{}
	for _, rel := range rels {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := remove(root, rel); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", filepath.Join(c.root, rel), err)
		}
		dirs[filepath.Dir(rel)] = true
	}
	for dir := range dirs {
		if err := syncDir(root, dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("fsync %s: %w", filepath.Join(c.root, dir), err)
		}
	}
	return nil
}

// DeleteAll removes the replica's ltx directory. Other files under the root
// are left alone: the root may be a directory the user shares.
func (c *Client) DeleteAll(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Join(c.root, "ltx")
	root, err := os.OpenRoot(c.root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("delete %s: %w", dir, err)
	}
	defer root.Close()
	if err := root.RemoveAll("ltx"); err != nil {
		return fmt.Errorf("delete %s: %w", dir, err)
	}
	return nil
}

// Every path below the root goes through an os.Root, so that a symbolic
// link in the replica (a level directory, the ltx directory, a file, the
// lease file) that points out of it is refused instead of followed: a
// replica directory others can write to must not let them make the writer
// read, overwrite, truncate or delete files elsewhere. The root itself may
// be a link: it is the path the user gave.

// open opens a file by its path relative to the root. Its errors name the
// full path.
func (c *Client) open(rel string, flag int, perm os.FileMode) (*os.File, error) {
	root, err := os.OpenRoot(c.root)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.OpenFile(rel, flag, perm)
	if pe, ok := err.(*os.PathError); ok {
		pe.Path = filepath.Join(c.root, rel)
	}
	return f, err
}

// readDir lists a directory by its path relative to the root, sorted by
// name (TXID order).
func (c *Client) readDir(rel string) ([]os.DirEntry, error) {
	d, err := c.open(rel, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	slices.SortFunc(entries, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}

// createTemp creates a new temp file beside rel, as os.CreateTemp would.
func createTemp(root *os.Root, rel string) (*os.File, string, error) {
	for range 100 {
		tmpRel := filepath.Join(filepath.Dir(rel), "."+filepath.Base(rel)+"."+strconv.FormatUint(rand.Uint64(), 36)+".tmp")
		f, err := root.OpenFile(tmpRel, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, os.ErrExist) {
			return f, tmpRel, err
		}
	}
	return nil, "", fmt.Errorf("create a temp file beside %s: too many name collisions", rel)
}

func syncDir(root *os.Root, rel string) error {
	d, err := root.Open(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
