package s3_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage"
	ltxs3 "github.com/ltxvfs/ltxvfs/storage/s3"
)

// TestLeaseUnderClockSkew shows that a lease's expiry is judged by the
// storage's clock alone: two writers (two lease holders of one replica)
// each see the server's clock an hour away from their own, one ahead and
// one behind (through a SkewProxy each, so the writers' clocks are two
// hours apart as the server tells them), and still agree. An unexpired
// lease, renewed, is never taken over however often the other asks; once
// its holder stops renewing, the other takes it over no earlier than its
// TTL after the last renewal and within a few seconds of it, not an hour
// early or late; the old holder's next renewal finds the lease lost.
//
// Judging by a writer's own clock instead (its now against the server's
// Last-Modified) makes the holder seen an hour behind lose its lease at
// once, and the one seen an hour ahead keep it an hour too long.
func TestLeaseUnderClockSkew(t *testing.T) { s3test.ForEach(t, testLeaseUnderClockSkew) }

func testLeaseUnderClockSkew(t *testing.T, srv *s3test.Server) {
	bucket := srv.NewBucket(t)
	ahead := srv.StartSkewProxy(t, time.Hour)
	behind := srv.StartSkewProxy(t, -time.Hour)
	for _, c := range []struct{ holder, taker *s3test.SkewProxy }{{ahead, behind}, {behind, ahead}} {
		name := fmt.Sprintf("holder %+v, taker %+v", c.holder.Offset, c.taker.Offset)
		prefix := fmt.Sprintf("skew%+d", int(c.holder.Offset.Hours()))
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testSkewedTakeover(t, skewedClient(t, srv, c.holder, bucket, prefix), skewedClient(t, srv, c.taker, bucket, prefix))
		})
	}
}

// skewedClient opens bucket/prefix on srv through the proxy p.
func skewedClient(t *testing.T, srv *s3test.Server, p *s3test.SkewProxy, bucket, prefix string) *ltxs3.Client {
	t.Helper()
	u, err := storage.ParseURL(srv.URL(bucket, prefix))
	if err != nil {
		t.Fatal(err)
	}
	u.Endpoint = p.Endpoint
	c, err := ltxs3.New(context.Background(), u, srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testSkewedTakeover(t *testing.T, a, b *ltxs3.Client) {
	const ttl = 2 * time.Second
	ctx := context.Background()
	ha := lease.Holder{Owner: "writer A", Path: "/a/app.db", PID: 1}
	hb := lease.Holder{Owner: "writer B", Path: "/b/app.db", PID: 2}

	la, err := a.AcquireLease(ctx, ha, ttl)
	if err != nil {
		t.Fatalf("A takes the lease: %v", err)
	}
	// A renews every TTL/2 for two TTLs; B asks all along.
	var lastRenewal time.Time
	refused := 0
	for end := time.Now().Add(2 * ttl); time.Now().Before(end); {
		lastRenewal = time.Now()
		if err := la.Renew(ctx, ttl); err != nil {
			t.Fatalf("A renews: %v", err)
		}
		for next := lastRenewal.Add(ttl / 2); time.Now().Before(next); time.Sleep(100 * time.Millisecond) {
			_, err := b.AcquireLease(ctx, hb, ttl)
			if !errors.Is(err, lease.ErrHeld) {
				t.Fatalf("B asked for A's unexpired lease %v after A renewed it: got %v, want lease.ErrHeld", time.Since(lastRenewal).Round(time.Millisecond), err)
			}
			refused++
		}
	}

	// A stops renewing: B gets the lease once the TTL (and the second of
	// slack that HTTP dates need) has passed by the server's clock.
	var lb lease.Lease
	for lb == nil {
		if time.Since(lastRenewal) > ttl+10*time.Second {
			t.Fatalf("B has not taken over A's lapsed lease %v after A's last renewal (TTL %v): %v", time.Since(lastRenewal).Round(time.Millisecond), ttl, err)
		}
		lb, err = b.AcquireLease(ctx, hb, ttl)
		if err != nil && !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("B takes the lapsed lease: %v", err)
		}
		if lb == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	took := time.Since(lastRenewal)
	// The lease cannot lapse before TTL after the request that renewed it
	// began; Last-Modified and Date are whole seconds, and the slack is
	// one more, so up to about three seconds later.
	if took < ttl || took > ttl+4*time.Second {
		t.Fatalf("B took over %v after A's last renewal began, want within [%v, %v]", took.Round(time.Millisecond), ttl, ttl+4*time.Second)
	}
	if err := la.Renew(ctx, ttl); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("A renews after B took over: %v, want lease.ErrHeld", err)
	}
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("B refused %d times while A renewed; took over %v after A's last renewal (TTL %v)", refused, took.Round(time.Millisecond), ttl)
}
