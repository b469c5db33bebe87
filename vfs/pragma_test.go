package vfs

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"
)

func pragmaSource(t *testing.T) *source {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY)`)
	for i := 1; i <= 4; i++ {
		src.exec(`INSERT INTO t(id) VALUES (?)`, i) // TXIDs 2..5 hold 1..4 rows
	}
	return src
}

func conn(t testing.TB, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPragmaTXID(t *testing.T) {
	src := pragmaSource(t)
	c := conn(t, src.open("poll=1h"))

	if got := one[string](t, c, `PRAGMA ltx_txid`); got != "5" {
		t.Fatalf("ltx_txid = %s, want 5", got)
	}
	// A setter returns the new value and pins the connection.
	if got := one[string](t, c, `PRAGMA ltx_txid = 3`); got != "3" {
		t.Fatalf("ltx_txid = 3 returned %q, want 3", got)
	}
	if got := ints(t, c, `SELECT count(*) FROM t`); got[0] != 2 {
		t.Fatalf("at TXID 3: %v rows, want 2", got)
	}
	if got := one[string](t, c, `PRAGMA ltx_txid`); got != "3" {
		t.Fatalf("ltx_txid after pinning = %s, want 3", got)
	}
	// 16 hex digits, as in file names.
	if got := one[string](t, c, `PRAGMA ltx_txid = '0000000000000004'`); got != "4" {
		t.Fatalf("ltx_txid = '0000000000000004' returned %q, want 4", got)
	}
	if got := ints(t, c, `SELECT count(*) FROM t`); got[0] != 3 {
		t.Fatalf("at TXID 4: %v rows, want 3", got)
	}
	// A pinned connection does not move when the replica does.
	src.exec(`INSERT INTO t(id) VALUES (5)`)
	pollNow(t, src.key())
	if got := ints(t, c, `SELECT count(*) FROM t`); got[0] != 3 {
		t.Fatalf("pinned at 4 after a poll: %v rows, want 3", got)
	}
	// latest: follow again.
	if got := one[string](t, c, `PRAGMA ltx_txid = latest`); got != "6" {
		t.Fatalf("ltx_txid = latest returned %q, want 6", got)
	}
	if got := ints(t, c, `SELECT count(*) FROM t`); got[0] != 5 {
		t.Fatalf("following again: %v rows, want 5", got)
	}
	// Pinned from the DSN.
	pinned := conn(t, src.open("txid=2"))
	if got := one[string](t, pinned, `PRAGMA ltx_txid`); got != "2" {
		t.Fatalf("txid=2: ltx_txid = %s", got)
	}
	if got := ints(t, pinned, `SELECT count(*) FROM t`); got[0] != 1 {
		t.Fatalf("txid=2: %v rows, want 1", got)
	}
}

func TestPragmaTime(t *testing.T) {
	src := pragmaSource(t)
	c := conn(t, src.open("poll=1h"))

	latest := ltx.FormatTimestamp(src.timeOf(5))
	if got := one[string](t, c, `PRAGMA ltx_time`); got != latest {
		t.Fatalf("ltx_time = %s, want %s", got, latest)
	}
	// Between the commits of 3 and 4: TXID 3.
	at := src.timeOf(3).Add(30 * time.Second).Format(time.RFC3339Nano)
	if got := one[string](t, c, `PRAGMA ltx_time = '`+at+`'`); got != ltx.FormatTimestamp(src.timeOf(3)) {
		t.Fatalf("ltx_time = %s returned %q, want the commit time of TXID 3, %s", at, got, ltx.FormatTimestamp(src.timeOf(3)))
	}
	if got := one[string](t, c, `PRAGMA ltx_txid`); got != "3" {
		t.Fatalf("after ltx_time: ltx_txid = %s, want 3", got)
	}
	if got := ints(t, c, `SELECT count(*) FROM t`); got[0] != 2 {
		t.Fatalf("at TXID 3: %v rows, want 2", got)
	}
	// Relative to now: the source's commits are a minute apart, starting
	// an hour ago, so -58m30s is between TXIDs 2 and 3.
	if got := one[string](t, c, `PRAGMA ltx_time = '-58m30s'`); got != ltx.FormatTimestamp(src.timeOf(2)) {
		t.Fatalf("ltx_time = '-58m30s' returned %q, want %s", got, ltx.FormatTimestamp(src.timeOf(2)))
	}
	if got := one[string](t, c, `PRAGMA ltx_time = 'latest'`); got != latest {
		t.Fatalf("ltx_time = latest returned %q, want %s", got, latest)
	}
	if got := one[string](t, c, `PRAGMA ltx_txid`); got != "5" {
		t.Fatalf("after ltx_time = latest: ltx_txid = %s, want 5", got)
	}
	// Pinned by time from the DSN.
	byTime := conn(t, src.open("time="+src.timeOf(4).Format(time.RFC3339Nano)))
	if got := one[string](t, byTime, `PRAGMA ltx_txid`); got != "4" {
		t.Fatalf("time=<commit of 4>: ltx_txid = %s, want 4", got)
	}
}

func TestPragmaLag(t *testing.T) {
	src := pragmaSource(t)
	// The last commit is stamped about 56 minutes ago.
	want := time.Since(src.timeOf(5)).Seconds()
	check := func(c *sql.Conn, how string) {
		t.Helper()
		lag, err := strconv.ParseFloat(one[string](t, c, `PRAGMA ltx_lag`), 64)
		if err != nil || lag < want-60 || lag > want+60 {
			t.Fatalf("%s: ltx_lag = %v, %v; want about %v", how, lag, err, want)
		}
	}
	// A pinned connection, the replica's only one, reports the replica's
	// lag, not its pin's age.
	check(conn(t, src.open("txid=2")), "pinned")
	check(conn(t, src.open("poll=1h")), "following")
}

func TestPragmaErrors(t *testing.T) {
	src := pragmaSource(t)
	c := conn(t, src.open("poll=1h"))
	ctx := context.Background()
	for _, tt := range []struct{ stmt, want string }{
		{`PRAGMA ltx_txid = 'abc'`, `txid "abc"`},
		{`PRAGMA ltx_txid = 0`, `txid "0"`},
		{`PRAGMA ltx_txid = 99`, `ltx_txid=99`},
		{`PRAGMA ltx_time = 'yesterday'`, `time "yesterday"`},
		{`PRAGMA ltx_time = '2001-01-01T00:00:00Z'`, `ltx_time=2001-01-01T00:00:00Z`},
		{`PRAGMA ltx_lag = 5`, `read-only`},
	} {
		_, err := c.ExecContext(ctx, tt.stmt)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.stmt, err, tt.want)
		}
	}
	// The connection is unchanged by the failed setters.
	if got := one[string](t, c, `PRAGMA ltx_txid`); got != "5" {
		t.Fatalf("after failed setters: ltx_txid = %s, want 5", got)
	}

	// Inside a read transaction a setter is an error, and the transaction
	// keeps its TXID.
	if _, err := c.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	ints(t, c, `SELECT count(*) FROM t`)
	for _, stmt := range []string{`PRAGMA ltx_txid = 2`, `PRAGMA ltx_time = 'latest'`, `PRAGMA ltx_txid = latest`} {
		if _, err := c.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "inside a read transaction") {
			t.Errorf("%s in a transaction: %v, want an error", stmt, err)
		}
	}
	if got := ints(t, c, `SELECT count(*) FROM t`); got[0] != 4 {
		t.Fatalf("in the transaction after refused setters: %v rows, want 4", got)
	}
	if _, err := c.ExecContext(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	// SQLite's own PRAGMAs still work.
	if got := one[int64](t, c, `PRAGMA page_size`); got != 4096 {
		t.Fatalf("page_size = %d", got)
	}
}
