package index

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// gatedClient holds the reads of one file until the gate opens, or the
// reader's context ends.
type gatedClient struct {
	storage.Client
	level    int
	min, max ltx.TXID
	gate     chan struct{}
	waiting  chan struct{} // closed when the first read waits
	once     sync.Once
}

func (c *gatedClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	if level == c.level && minTXID == c.min && maxTXID == c.max {
		c.once.Do(func() { close(c.waiting) })
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.Client.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
}

// TestSharedFetchOutlivesItsLeader: two builds need the same file; the
// one that started reading it gives up (its query was cancelled). The
// other must still get the file, not the first one's "context canceled".
func TestSharedFetchOutlivesItsLeader(t *testing.T) {
	r := newTestReplica(t)
	r.grow(10)
	r.apply(10, 2)
	r.apply(10, 3)
	c := &gatedClient{Client: r.client, level: 0, min: 1, max: 1, gate: make(chan struct{}), waiting: make(chan struct{})}
	x := New(c, Options{})

	leader, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := x.At(leader, 2)
		leaderErr <- err
	}()
	<-c.waiting
	follower := make(chan error, 1)
	go func() {
		v, err := x.At(context.Background(), 3)
		if err == nil {
			r.check(v)
		}
		follower <- err
	}()
	time.Sleep(50 * time.Millisecond) // the follower joins the read in flight
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled build: %v, want context.Canceled", err)
	}
	close(c.gate)
	if err := <-follower; err != nil {
		t.Fatalf("a build failed because another build sharing its read was cancelled: %v", err)
	}
}
