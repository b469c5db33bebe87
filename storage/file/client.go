package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

func init() {
	storage.Register("file", func(_ context.Context, u *storage.URL) (storage.Client, error) {
		return New(u.Path), nil
	})
}

var _ storage.Client = (*Client)(nil)

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
	if err := checkLevel(level); err != nil {
		return nil, err
	}
	dir := storage.FileLevelDir(c.root, level)
	entries, err := os.ReadDir(dir) // sorted by name, which is TXID order
	if errors.Is(err, os.ErrNotExist) {
		return ltx.NewFileInfoSliceIterator(nil), nil
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
	return ltx.NewFileInfoSliceIterator(infos), nil
}

// OpenLTXFile opens a ranged reader on one file.
func (c *Client) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkLevel(level); err != nil {
		return nil, err
	}
	name := storage.FilePath(c.root, level, minTXID, maxTXID)
	if offset < 0 || size < 0 {
		return nil, fmt.Errorf("open %s: invalid range offset=%d size=%d", name, offset, size)
	}
	f, err := os.Open(name)
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
// sets its mtime to the header timestamp, renames it into place and fsyncs
// the directory.
func (c *Client) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkLevel(level); err != nil {
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

	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
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
	if err := os.Chtimes(tmp.Name(), timestamp, timestamp); err != nil {
		return nil, fmt.Errorf("write %s: set mtime: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	committed = true
	if err := syncDir(dir); err != nil {
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

// DeleteLTXFiles removes files; missing ones are skipped.
func (c *Client) DeleteLTXFiles(ctx context.Context, files []*ltx.FileInfo) error {
	dirs := map[string]bool{}
	for _, info := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := checkLevel(info.Level); err != nil {
			return err
		}
		name := storage.FilePath(c.root, info.Level, info.MinTXID, info.MaxTXID)
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", name, err)
		}
		dirs[filepath.Dir(name)] = true
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("fsync %s: %w", dir, err)
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
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete %s: %w", dir, err)
	}
	return nil
}

func checkLevel(level int) error {
	if (level < 0 || level > storage.SnapshotLevel) && level != storage.HintLevel {
		return fmt.Errorf("invalid level %d (want 0..%d, or %d for hints)", level, storage.SnapshotLevel, storage.HintLevel)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
