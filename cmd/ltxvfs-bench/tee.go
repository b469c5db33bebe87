package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// tee is the writer's client when the replica is not a directory nginx can
// serve (-replica s3://... with -serve-http): every file and object the
// writer stores in the replica, and every deletion, is repeated in a
// mirror directory, before the call returns, so that a reader of the
// mirror sees what a reader of the replica sees as soon as the writer
// moves on. Reads (the writer's own, for compaction) go to the replica
// only, and every answer is the replica's.
type tee struct {
	storage.Client
	mirror storage.Client
	spool  string // directory for the copy of a file being written
}

func (t *tee) Unwrap() storage.Client { return t.Client }

func (t *tee) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	name := storage.FileName(level, minTXID, maxTXID)
	f, err := os.CreateTemp(t.spool, "tee-*.ltx")
	if err != nil {
		return nil, fmt.Errorf("mirror %s: %w", name, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	info, err := t.Client.WriteLTXFile(ctx, level, minTXID, maxTXID, io.TeeReader(r, f))
	if err != nil {
		return nil, err
	}
	// The copy is what the replica read, which must be the whole file.
	if n, err := f.Seek(0, io.SeekCurrent); err != nil || n != info.Size {
		return nil, fmt.Errorf("mirror %s: the replica stored %d bytes, the copy has %d (%v)", name, info.Size, n, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("mirror %s: %w", name, err)
	}
	if _, err := t.mirror.WriteLTXFile(ctx, level, minTXID, maxTXID, f); err != nil {
		return nil, fmt.Errorf("mirror %s into %s: %w", name, t.mirror, err)
	}
	return info, nil
}

func (t *tee) DeleteLTXFiles(ctx context.Context, files []*ltx.FileInfo) error {
	if err := t.Client.DeleteLTXFiles(ctx, files); err != nil {
		return err
	}
	if err := t.mirror.DeleteLTXFiles(ctx, files); err != nil {
		return fmt.Errorf("mirror the deletion of %d files into %s: %w", len(files), t.mirror, err)
	}
	return nil
}

func (t *tee) DeleteAll(ctx context.Context) error {
	if err := t.Client.DeleteAll(ctx); err != nil {
		return err
	}
	return t.mirror.DeleteAll(ctx)
}

// WriteObject writes the object to the replica under the caller's
// conditions and, when it landed, to the mirror unconditionally: the
// conditions name the replica's ETags, which the mirror's are not.
func (t *tee) WriteObject(ctx context.Context, name string, r io.Reader, opts storage.WriteOptions) (storage.ObjectInfo, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return storage.ObjectInfo{Name: name}, err
	}
	info, err := t.Client.WriteObject(ctx, name, bytes.NewReader(data), opts)
	if err != nil {
		return info, err
	}
	if _, err := t.mirror.WriteObject(ctx, name, bytes.NewReader(data), storage.WriteOptions{}); err != nil {
		return info, fmt.Errorf("mirror object %s into %s: %w", name, t.mirror, err)
	}
	return info, nil
}

func (t *tee) DeleteObjects(ctx context.Context, names []string) error {
	if err := t.Client.DeleteObjects(ctx, names); err != nil {
		return err
	}
	if err := t.mirror.DeleteObjects(ctx, names); err != nil {
		return fmt.Errorf("mirror the deletion of %d objects into %s: %w", len(names), t.mirror, err)
	}
	return nil
}
