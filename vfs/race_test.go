package vfs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Many connections query while the replica grows and the poller runs.
// Every transaction must see a consistent state: in each TXID the table
// holds rows 1..n with sum n(n+1)/2, and counts never go backwards on a
// connection.
func TestConcurrentReadersWhileReplicaGrows(t *testing.T) {
	src := newSource(t, 1024)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`INSERT INTO t(id, v) SELECT value, printf('%0200d', value) FROM generate_series(1, 100)`)

	db := src.open("poll=2ms")
	db.SetMaxOpenConns(8)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	var seen [8]atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			c, err := db.Conn(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			var last int64
			for ctx.Err() == nil {
				var n, sum int64
				var pages int64
				err := c.QueryRowContext(context.Background(), `SELECT count(*), coalesce(sum(id), 0), (SELECT page_count FROM pragma_page_count) FROM t`).Scan(&n, &sum, &pages)
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", g, err)
					return
				}
				if sum != n*(n+1)/2 {
					errs <- fmt.Errorf("reader %d: %d rows sum to %d: a torn snapshot", g, n, sum)
					return
				}
				if n < last {
					errs <- fmt.Errorf("reader %d: %d rows after %d: went back in time", g, n, last)
					return
				}
				last = n
				seen[g].Store(n)
			}
		})
	}
	for i := 0; i < 20; i++ {
		lo := 101 + i*25
		src.exec(`INSERT INTO t(id, v) SELECT value, printf('%0200d', value) FROM generate_series(?, ?)`, lo, lo+24)
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "every reader to see every row", func() bool {
		for i := range seen {
			if seen[i].Load() != 600 && len(errs) == 0 {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
