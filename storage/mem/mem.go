package mem

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

var _ storage.AllLister = (*Client)(nil)

// Client is a replica held in memory (see the package's doc).
type Client struct {
	mu      sync.Mutex
	files   map[memKey]memFile
	objects map[string]memObject
	gen     uint64 // counts object writes: the ETag of each
}

type memKey struct {
	level    int
	min, max ltx.TXID
}

type memFile struct {
	data    []byte
	created time.Time
}

type memObject struct {
	data    []byte
	etag    string
	written time.Time
}

func (o memObject) info(name string) storage.ObjectInfo {
	return storage.ObjectInfo{Name: name, Size: int64(len(o.data)), ETag: o.etag, ModTime: o.written}
}

// New returns an empty in-memory replica.
func New() *Client { return &Client{files: map[memKey]memFile{}, objects: map[string]memObject{}} }

// Put stores data as the file level/min-max, unchecked, with created as
// its listed CreatedAt.
func (m *Client) Put(level int, minTXID, maxTXID ltx.TXID, data []byte, created time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[memKey{level, minTXID, maxTXID}] = memFile{data: bytes.Clone(data), created: created}
}

func (m *Client) String() string { return "mem://" }

func (m *Client) LTXFiles(ctx context.Context, level int, seek ltx.TXID, _ bool) (ltx.FileIterator, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ltx.NewFileInfoSliceIterator(m.list(func(k memKey) bool { return k.level == level && k.min >= seek })), nil
}

// AllLTXFiles lists levels 0 through SnapshotLevel (see storage.AllLister).
func (m *Client) AllLTXFiles(ctx context.Context, _ bool) ([]*ltx.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.list(func(k memKey) bool { return k.level >= 0 && k.level <= storage.SnapshotLevel }), nil
}

// list returns the files that keep selects, by level, then TXIDs.
func (m *Client) list(keep func(memKey) bool) []*ltx.FileInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	var infos []*ltx.FileInfo
	for k, f := range m.files {
		if keep(k) {
			infos = append(infos, &ltx.FileInfo{Level: k.level, MinTXID: k.min, MaxTXID: k.max, Size: int64(len(f.data)), CreatedAt: f.created})
		}
	}
	slices.SortFunc(infos, func(a, b *ltx.FileInfo) int {
		return cmp.Or(cmp.Compare(a.Level, b.Level), cmp.Compare(a.MinTXID, b.MinTXID), cmp.Compare(a.MaxTXID, b.MaxTXID))
	})
	return infos
}

func (m *Client) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := storage.FileName(level, minTXID, maxTXID)
	m.mu.Lock()
	f, ok := m.files[memKey{level, minTXID, maxTXID}]
	m.mu.Unlock()
	switch {
	case !ok:
		return nil, fmt.Errorf("open %s: %w", name, os.ErrNotExist)
	case offset < 0 || size < 0:
		return nil, fmt.Errorf("open %s: invalid range offset=%d size=%d", name, offset, size)
	case offset >= int64(len(f.data)) && !(offset == 0 && size == 0):
		return nil, fmt.Errorf("open %s: range starts at %d, past the end of the %d-byte file", name, offset, len(f.data))
	}
	// The stored slice is never written again (Put clones), so readers
	// share it.
	return storage.ExactReader(io.NopCloser(bytes.NewReader(f.data[offset:])), size, name), nil
}

func (m *Client) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	name := storage.FileName(level, minTXID, maxTXID)
	data, err := io.ReadAll(storage.ContextReader(ctx, r))
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	hdr, _, err := ltx.DecodeHeader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	if hdr.MinTXID != minTXID || hdr.MaxTXID != maxTXID {
		return nil, fmt.Errorf("write %s: header holds TXIDs %s-%s", name, hdr.MinTXID, hdr.MaxTXID)
	}
	created := time.UnixMilli(hdr.Timestamp).UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.files[memKey{level, minTXID, maxTXID}]; ok {
		if !bytes.Equal(cur.data, data) {
			return nil, fmt.Errorf("write %s: %w", name, storage.ErrFileExists)
		}
		created = cur.created // the file as stored (Put may have set another time)
	} else {
		m.files[memKey{level, minTXID, maxTXID}] = memFile{data: data, created: created}
	}
	return &ltx.FileInfo{Level: level, MinTXID: minTXID, MaxTXID: maxTXID, Size: int64(len(data)), CreatedAt: created}, nil
}

func (m *Client) DeleteLTXFiles(ctx context.Context, files []*ltx.FileInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range files {
		delete(m.files, memKey{f.Level, f.MinTXID, f.MaxTXID})
	}
	return nil
}

func (m *Client) DeleteAll(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.files)
	clear(m.objects)
	return nil
}

func (m *Client) ReadObject(ctx context.Context, name string, opts storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	info := storage.ObjectInfo{Name: name}
	if err := ctx.Err(); err != nil {
		return nil, info, err
	}
	if err := storage.CheckObjectName(name); err != nil {
		return nil, info, err
	}
	m.mu.Lock()
	o, ok := m.objects[name]
	m.mu.Unlock()
	if !ok {
		return nil, info, fmt.Errorf("read object %s: %w", name, os.ErrNotExist)
	}
	info = o.info(name)
	if opts.IfNoneMatch != "" && opts.IfNoneMatch == o.etag {
		return nil, info, fmt.Errorf("read object %s: %w", name, storage.ErrNotModified)
	}
	return io.NopCloser(bytes.NewReader(o.data)), info, nil // never written again: a write stores a new slice
}

func (m *Client) WriteObject(ctx context.Context, name string, r io.Reader, opts storage.WriteOptions) (storage.ObjectInfo, error) {
	if err := storage.CheckObjectName(name); err != nil {
		return storage.ObjectInfo{}, err
	}
	data, err := io.ReadAll(storage.ContextReader(ctx, r))
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("write object %s: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, exists := m.objects[name]
	switch {
	case opts.IfNoneMatch && exists,
		opts.IfMatch != "" && (!exists || cur.etag != opts.IfMatch):
		return storage.ObjectInfo{}, fmt.Errorf("write object %s %s: %w", name, opts, storage.ErrPreconditionFailed)
	}
	m.gen++
	o := memObject{data: data, etag: fmt.Sprintf(`"mem-%d"`, m.gen), written: time.Now().UTC()}
	m.objects[name] = o
	return o.info(name), nil
}

func (m *Client) ListObjects(ctx context.Context, dir string) ([]storage.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := storage.CheckObjectDir(dir); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var infos []storage.ObjectInfo
	for name, o := range m.objects {
		if dir == "" || strings.HasPrefix(name, dir+"/") {
			infos = append(infos, o.info(name))
		}
	}
	slices.SortFunc(infos, func(a, b storage.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}

func (m *Client) DeleteObjects(ctx context.Context, names []string) error {
	for _, name := range names {
		if err := storage.CheckObjectName(name); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range names {
		delete(m.objects, name)
	}
	return nil
}
