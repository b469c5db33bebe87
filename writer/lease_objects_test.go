package writer

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/mem"
)

// stuckLease has run out and cannot be renewed until ok is set.
type stuckLease struct {
	mu      sync.Mutex
	expires time.Time
	ok      bool
}

func (l *stuckLease) Renew(_ context.Context, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ok {
		return errors.New("connection refused")
	}
	l.expires = time.Now().Add(ttl)
	return nil
}

func (l *stuckLease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

func (l *stuckLease) Release(context.Context) error { return nil }
func (l *stuckLease) TookOverFrom() *lease.Holder   { return nil }

// TestObjectWritesWaitForTheLease: object writes and deletes go out under
// the lease, as LTX files do: refused while it has run out and cannot be
// renewed, made once it is renewed.
func TestObjectWritesWaitForTheLease(t *testing.T) {
	ctx := context.Background()
	mem := mem.New()
	if _, err := mem.WriteObject(ctx, "hints/a", strings.NewReader("a"), storage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	lease := &stuckLease{expires: time.Now().Add(-time.Second)}
	r := &Replicator{raw: mem, client: mem, opts: Options{LeaseTTL: time.Minute}, lease: lease}
	c := leasedClient{Client: mem, r: r}

	if _, err := c.WriteObject(ctx, "manifest", strings.NewReader("m"), storage.WriteOptions{IfNoneMatch: true}); err == nil {
		t.Fatal("an object was written after the lease ran out")
	}
	if err := c.DeleteObjects(ctx, []string{"hints/a"}); err == nil {
		t.Fatal("an object was deleted after the lease ran out")
	}
	if infos, err := mem.ListObjects(ctx, ""); err != nil || len(infos) != 1 || infos[0].Name != "hints/a" {
		t.Fatalf("after refused requests the replica holds %+v (%v)", infos, err)
	}

	lease.mu.Lock()
	lease.ok = true
	lease.mu.Unlock()
	if _, err := c.WriteObject(ctx, "manifest", strings.NewReader("m"), storage.WriteOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteObjects(ctx, []string{"hints/a"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mem.ReadObject(ctx, "hints/a", storage.ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("hints/a after its delete: %v", err)
	}
}
