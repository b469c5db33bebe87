package vfs

import (
	"context"
	"io"
	"sync"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// roundsClient measures the sequential round trips behind a client: the
// longest chain of requests each of which started after the one before it
// had finished. A request that starts while others are under way adds
// nothing; one that starts after a request has finished is one round
// deeper than the deepest finished so far. It counts chains of any kind,
// so unrelated requests that happen to follow each other count too: an
// upper bound on the round trips the caller needed.
type roundsClient struct {
	storage.Client

	mu   sync.Mutex
	done int // the deepest chain among finished requests
}

// Reset starts counting again from zero.
func (c *roundsClient) Reset() {
	c.mu.Lock()
	c.done = 0
	c.mu.Unlock()
}

// Rounds is the deepest chain of requests finished since Reset.
func (c *roundsClient) Rounds() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

func (c *roundsClient) start() func() {
	c.mu.Lock()
	depth := c.done + 1
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.done = max(c.done, depth)
			c.mu.Unlock()
		})
	}
}

func (c *roundsClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	done := c.start()
	itr, err := c.Client.LTXFiles(ctx, level, seek, useMetadata)
	if err != nil {
		done()
		return nil, err
	}
	return &roundsIterator{FileIterator: itr, done: done}, nil
}

func (c *roundsClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	done := c.start()
	rc, err := c.Client.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil {
		done()
		return nil, err
	}
	return &roundsBody{ReadCloser: rc, done: done}, nil
}

func (c *roundsClient) ReadObject(ctx context.Context, name string, opts storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	done := c.start()
	rc, info, err := c.Client.ReadObject(ctx, name, opts)
	if err != nil {
		done()
		return nil, info, err
	}
	return &roundsBody{ReadCloser: rc, done: done}, info, nil
}

func (c *roundsClient) ListObjects(ctx context.Context, dir string) ([]storage.ObjectInfo, error) {
	defer c.start()()
	return c.Client.ListObjects(ctx, dir)
}

type roundsIterator struct {
	ltx.FileIterator
	done func()
}

func (itr *roundsIterator) Next() bool {
	if itr.FileIterator.Next() {
		return true
	}
	itr.done()
	return false
}

func (itr *roundsIterator) Close() error {
	itr.done()
	return itr.FileIterator.Close()
}

type roundsBody struct {
	io.ReadCloser
	done func()
}

func (b *roundsBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.done()
	}
	return n, err
}

func (b *roundsBody) Close() error {
	b.done()
	return b.ReadCloser.Close()
}
