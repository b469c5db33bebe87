package vfs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

const fullScan = `SELECT count(*) + sum(length(v)) FROM t`

// TestBudgetStopsAFullScan: a full scan past max_requests= or max_bytes=
// fails with an error naming the budget, before storage sees the request
// over it; the same connection then runs a point lookup, and the next scan
// has a whole budget again (and is stopped again: its cache is too small
// to hold what the first one read ahead).
func TestBudgetStopsAFullScan(t *testing.T) {
	src := statsSource(t)
	point := costQueries[0].sql
	wantPoint := one[int64](t, src.db, point)
	for _, tt := range []struct {
		param, value string
		used         func(s Stats) int64 // what the budget counts
		limit        int64
	}{
		{"max_requests", "3", func(s Stats) int64 { return s.Requests }, 3},
		{"max_bytes", "256KiB", func(s Stats) int64 { return s.Bytes }, 256 << 10},
	} {
		t.Run(tt.param, func(t *testing.T) {
			counting := wrap.NewCounting(src.client)
			statsSeq++
			name := fmt.Sprintf("stats-test-%d", statsSeq)
			attach(t, name, Options{Client: counting, Poll: time.Hour, CacheBytes: 512 << 10})
			c := conn(t, openDB(t, "file:"+name+"?vfs=ltx&"+tt.param+"="+tt.value))
			ctx := context.Background()
			for run := 1; run <= 2; run++ {
				counting.Reset()
				var n int64
				err := c.QueryRowContext(ctx, fullScan).Scan(&n)
				var over *BudgetError
				if !errors.As(err, &over) || over.Param != tt.param || over.Limit != tt.limit {
					t.Fatalf("scan %d: %v (read %d), want the %s budget's error", run, err, n, tt.param)
				}
				t.Logf("scan %d: %v", run, err)
				if want := "statement exceeded " + tt.param + "=" + tt.value; !strings.Contains(err.Error(), want) {
					t.Fatalf("scan %d: error %q does not say %q", run, err, want)
				}
				s := statsOf(t, c)
				cs := counting.Counts()
				storageSaw := map[string]int64{"max_requests": cs.Requests(), "max_bytes": cs.BytesRead}[tt.param]
				if tt.used(s) > tt.limit || storageSaw > tt.limit || storageSaw != tt.used(s) {
					t.Fatalf("scan %d stopped at %v; storage saw %d: over the budget %d", run, s, storageSaw, tt.limit)
				}
				if tt.used(s) == 0 {
					t.Fatalf("scan %d: %v: the budget stopped it before its first request", run, s)
				}
				if got := one[int64](t, c, point); got != wantPoint {
					t.Fatalf("after the stopped scan, the point lookup read %d, want %d", got, wantPoint)
				}
			}
		})
	}
}

// TestBudgetInATransaction: inside BEGIN...COMMIT the budget covers the
// whole transaction: two lookups that fit one by one stop the second in
// one transaction.
func TestBudgetInATransaction(t *testing.T) {
	src := statsSource(t)
	counting := wrap.NewCounting(src.client)
	_, c := openStats(t, counting, coldTuning{}, "&max_requests=1")
	ctx := context.Background()
	q := `SELECT length(v) FROM t WHERE id = ?`
	for _, id := range []int{100, 9000} { // one request each, cold
		if got := one[int64](t, c, q, id); got != 80 {
			t.Fatalf("row %d: length %d", id, got)
		}
	}
	tx, err := c.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if got := one[int64](t, tx, q, 3000); got != 80 {
		t.Fatalf("row 3000: length %d", got)
	}
	var n int64
	err = tx.QueryRowContext(ctx, q, 15000).Scan(&n)
	var over *BudgetError
	if !errors.As(err, &over) || over.Param != "max_requests" {
		t.Fatalf("second cold lookup in one transaction: %v, want the max_requests budget's error", err)
	}
}

// TestBudgetSkipsReadsAhead: a range read whose pages, read one by one,
// fit its max_bytes= succeeds though reading ahead would take it past: the
// reads ahead that would not fit are not made, and the statement reads no
// more than its budget.
func TestBudgetSkipsReadsAhead(t *testing.T) {
	src := statsSource(t)
	const q = `SELECT sum(length(v)) FROM t WHERE id BETWEEN 5000 AND 5400`
	want := one[int64](t, src.db, q)

	_, plain := openStats(t, src.client, coldTuning{noReadahead: true}, "")
	if got := one[int64](t, plain, q); got != want {
		t.Fatalf("%d, the primary says %d", got, want)
	}
	need := statsOf(t, plain).Bytes

	limit := need + 2048
	_, ahead := openStats(t, src.client, coldTuning{}, "")
	if got := one[int64](t, ahead, q); got != want {
		t.Fatalf("%d, the primary says %d", got, want)
	}
	if s := statsOf(t, ahead); s.Bytes <= limit {
		t.Fatalf("reading ahead without a budget, the range costs %v, within %d: the test tests nothing", s, limit)
	}

	counting := wrap.NewCounting(src.client)
	_, c := openStats(t, counting, coldTuning{}, "&max_bytes="+strconv.FormatInt(limit, 10))
	counting.Reset()
	if got := one[int64](t, c, q); got != want {
		t.Fatalf("with max_bytes=%d (it needs %d): %d, the primary says %d", limit, need, got, want)
	}
	if s := statsOf(t, c); s.Bytes > limit || counting.Counts().BytesRead > limit {
		t.Fatalf("with max_bytes=%d: %v, storage saw %d bytes", limit, s, counting.Counts().BytesRead)
	}
}
