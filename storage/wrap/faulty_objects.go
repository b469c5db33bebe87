package wrap

import (
	"context"
	"fmt"
	"io"

	"github.com/ltxvfs/ltxvfs/storage"
)

// Object requests get the faults of LTX file requests, by their own Ops.

func (f *Faulty) ReadObject(ctx context.Context, name string, opts storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	p := f.plan(OpObjectRead, name)
	if err := f.begin(ctx, p); err != nil {
		return nil, storage.ObjectInfo{Name: name}, err
	}
	rc, info, err := f.c.ReadObject(ctx, name, opts)
	if err := f.end(p, err); err != nil {
		if rc != nil {
			rc.Close()
		}
		return nil, info, err
	}
	body, err := f.body(ctx, p, rc, info.Size)
	if err != nil {
		return nil, info, err
	}
	return body, info, nil
}

func (f *Faulty) WriteObject(ctx context.Context, name string, r io.Reader, opts storage.WriteOptions) (storage.ObjectInfo, error) {
	p := f.plan(OpObjectWrite, name)
	if err := f.begin(ctx, p); err != nil {
		return storage.ObjectInfo{}, err
	}
	up, err := f.upload(ctx, p, r, 0)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	info, err := f.c.WriteObject(ctx, name, up, opts)
	if err := f.endUpload(p, up, err); err != nil {
		return storage.ObjectInfo{}, err
	}
	return info, nil
}

func (f *Faulty) ListObjects(ctx context.Context, dir string) ([]storage.ObjectInfo, error) {
	return listWhole(ctx, f, f.plan(OpObjectList, dir+"/"), func() ([]storage.ObjectInfo, error) {
		return f.c.ListObjects(ctx, dir)
	})
}

func (f *Faulty) DeleteObjects(ctx context.Context, names []string) error {
	p := f.plan(OpObjectDelete, fmt.Sprintf("%d objects", len(names)))
	if err := f.begin(ctx, p); err != nil {
		return err
	}
	return f.end(p, f.c.DeleteObjects(ctx, names))
}
