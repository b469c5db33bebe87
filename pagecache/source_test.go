package pagecache

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
)

// TestGetSaysWhereAPageCameFrom: storage, then memory; the disk tier in a
// cache made again on its directory; a read ahead waited for, or landed
// already. What a caller counts as its round trips rests on it.
func TestGetSaysWhereAPageCameFrom(t *testing.T) {
	ctx := context.Background()
	dir, files := newTestReplica(t, 20)
	f := files[0]
	get := func(c *Cache, pgno uint32, want Source) {
		t.Helper()
		page, how, err := c.Get(ctx, f.refs[pgno])
		if err != nil || !bytes.Equal(page, f.pages[pgno]) {
			t.Fatalf("page %d: %v", pgno, err)
		}
		if how.From != want || how.Since.IsZero() != (want == FromMemory || want == FromDisk) {
			t.Fatalf("page %d came from %d (since %v), want %d", pgno, how.From, how.Since, want)
		}
	}

	tier := t.TempDir()
	c := New(file.New(dir), Options{Disk: openDisk(t, tier, 0)})
	get(c, 4, FromStorage)
	get(c, 4, FromMemory)
	waitFor(t, "the page to reach the disk", func() bool { return len(pageFiles(t, tier)) == 1 })
	c.Close()
	c = New(file.New(dir), Options{Disk: openDisk(t, tier, 0)})
	defer c.Close()
	get(c, 4, FromDisk)

	gated := newGated(file.New(dir))
	c = New(gated, Options{})
	defer c.Close()
	c.PrefetchAsync(ctx, []Ref{f.refs[7], f.refs[8]})
	c.mu.Lock()
	asked := c.inflight[f.refs[7].Key].since
	c.mu.Unlock()
	waiting := make(chan Served)
	watch := &doneWatch{Context: ctx, called: make(chan struct{})}
	go func() {
		_, how, err := c.Get(watch, f.refs[7])
		if err != nil {
			t.Error(err)
		}
		waiting <- how
	}()
	<-watch.called // Get waits for the read ahead
	gated.open()
	if how := <-waiting; how.From != FromAhead || !how.Since.Equal(asked) {
		t.Fatalf("page 7, waited for its read ahead: came from %d since %v, want %d since %v", how.From, how.Since, FromAhead, asked)
	}
	waitFor(t, "the read ahead to land", func() bool { return c.Contains(f.refs[8].Key) })
	get(c, 8, FromMemory)
}

// TestPrefetchAsyncKeepsContextValues: the reads ahead carry the values of
// the context they were asked for with (a caller's accounting), though not
// its end.
func TestPrefetchAsyncKeepsContextValues(t *testing.T) {
	dir, files := newTestReplica(t, 10)
	f := files[0]
	seen := &valueClient{Client: file.New(dir)}
	c := New(seen, Options{})
	defer c.Close()
	ctx := context.WithValue(context.Background(), valueKey{}, "query 1")
	c.PrefetchAsync(ctx, []Ref{f.refs[3], f.refs[4]})
	waitFor(t, "the read ahead to land", func() bool { return c.Contains(f.refs[4].Key) })
	if n := seen.with.Load(); n != 1 {
		t.Fatalf("%d reads ahead carried the value, want 1", n)
	}
}

type valueKey struct{}

type valueClient struct {
	storage.Client
	with atomic.Int64
}

func (c *valueClient) OpenLTXFile(ctx context.Context, level int, min, max ltx.TXID, off, size int64) (io.ReadCloser, error) {
	if ctx.Value(valueKey{}) == "query 1" {
		c.with.Add(1)
	}
	return c.Client.OpenLTXFile(ctx, level, min, max, off, size)
}
