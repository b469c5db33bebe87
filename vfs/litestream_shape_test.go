package vfs

import (
	"context"
	"fmt"
	"io"
	"io/fs"

	"github.com/ltxvfs/ltxvfs/storage"
)

// litestreamShaped shows a replica as Litestream writes it: its LTX files
// only. The objects our writer publishes besides them (the manifest, the
// hints) answer as storage answers for objects that do not exist, after
// the same request: a reader still asks for them, and pays for asking.
type litestreamShaped struct{ storage.Client }

func (c litestreamShaped) Unwrap() storage.Client { return c.Client }

func (c litestreamShaped) ReadObject(_ context.Context, name string, _ storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	return nil, storage.ObjectInfo{Name: name}, fmt.Errorf("read object %s: %w", name, fs.ErrNotExist)
}

func (c litestreamShaped) ListObjects(context.Context, string) ([]storage.ObjectInfo, error) {
	return nil, nil
}
