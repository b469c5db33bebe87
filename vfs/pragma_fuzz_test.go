package vfs

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/fuzzseed"
	"github.com/ltxvfs/ltxvfs/internal/pointintime"
)

// FuzzPragma feeds arbitrary values to the ltx_txid and ltx_time setters
// through SQL, on a replica whose TXID n holds n-1 rows. Properties: never a
// panic; a refused value is an error naming the PRAGMA and the value, and
// leaves the connection where it was; an accepted value pins exactly the
// TXID it means (for a time, the newest committed at or before it), and
// the rows read are that TXID's.
func FuzzPragma(f *testing.F) {
	fuzzseed.Write(f, []fuzzseed.Seed{
		fuzzseed.New("txid", false, "3"),
		fuzzseed.New("txid-hex", false, "0000000000000004"),
		fuzzseed.New("txid-latest", false, "LATEST"),
		fuzzseed.New("txid-zero", false, "0"),
		fuzzseed.New("txid-beyond", false, "99"),
		fuzzseed.New("txid-huge", false, "18446744073709551615"),
		fuzzseed.New("txid-garbage", false, "abc"),
		fuzzseed.New("txid-negative", false, "-1"),
		fuzzseed.New("txid-quote", false, "1'; DROP TABLE t; --"),
		fuzzseed.New("time-absolute", true, "2001-01-01T00:00:00Z"),
		fuzzseed.New("time-relative", true, "-30m"),
		fuzzseed.New("time-now", true, "-0s"),
		fuzzseed.New("time-future", true, "+5m"),
		fuzzseed.New("time-far-future", true, "2999-01-01T00:00:00Z"),
		fuzzseed.New("time-garbage", true, "yesterday"),
		fuzzseed.New("time-latest", true, "latest"),
		fuzzseed.New("time-empty", true, ""),
	})
	src := newSource(f, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY)`)
	for i := 1; i <= 4; i++ {
		src.exec(`INSERT INTO t(id) VALUES (?)`, i)
	}
	const latest = 5
	commitTime := map[ltx.TXID]time.Time{}
	for txid := ltx.TXID(1); txid <= latest; txid++ {
		commitTime[txid] = src.timeOf(txid)
	}
	db := src.open("poll=1h")
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	txidOf := func(t *testing.T) ltx.TXID {
		t.Helper()
		var s string
		if err := db.QueryRowContext(ctx, `PRAGMA ltx_txid`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PRAGMA ltx_txid = %q", s)
		}
		return ltx.TXID(n)
	}

	f.Fuzz(func(t *testing.T, byTime bool, value string) {
		if strings.IndexByte(value, 0) >= 0 {
			return // SQL text ends at a NUL: SQLite would never pass it
		}
		name := "ltx_txid"
		if byTime {
			name = "ltx_time"
		}
		before := txidOf(t)
		start := time.Now()
		var got string
		err := db.QueryRowContext(ctx, `PRAGMA `+name+` = '`+strings.ReplaceAll(value, "'", "''")+`'`).Scan(&got)
		end := time.Now()
		if err != nil {
			if !strings.Contains(err.Error(), name) || (utf8.ValidString(value) && !strings.Contains(err.Error(), name+"="+value)) {
				t.Fatalf("%s = %q: error does not name the PRAGMA and value: %v", name, value, err)
			}
			if after := txidOf(t); after != before {
				t.Fatalf("%s = %q failed (%v) but moved the connection from TXID %d to %d", name, value, err, before, after)
			}
			return
		}
		if got == "" {
			t.Fatalf("%s = %q returned an empty string", name, value)
		}
		txid := txidOf(t)
		switch {
		case value == "":
			// SQLite passes '' as it passes no value: a read.
			if txid != before {
				t.Fatalf("%s = '' moved the connection from TXID %d to %d", name, before, txid)
			}
		case strings.EqualFold(value, "latest"):
			if txid != latest {
				t.Fatalf("%s = latest: TXID %d, want %d", name, txid, latest)
			}
		case !byTime:
			want, perr := pointintime.ParseTXID(value)
			if perr != nil || txid != want || got != strconv.FormatUint(uint64(want), 10) {
				t.Fatalf("ltx_txid = %q returned %q and pinned TXID %d (parsed: %d, %v)", value, got, txid, want, perr)
			}
		default:
			// A relative time is taken from the clock during the call.
			lo, err1 := pointintime.ParseTime(value, start)
			hi, err2 := pointintime.ParseTime(value, end)
			if err1 != nil || err2 != nil {
				t.Fatalf("ltx_time = %q accepted, but it does not parse: %v", value, err1)
			}
			if at := commitTime[txid]; at.After(hi) {
				t.Fatalf("ltx_time = %q pinned TXID %d, committed at %v, after %v", value, txid, at, hi)
			}
			if txid < latest && !commitTime[txid+1].After(lo) {
				t.Fatalf("ltx_time = %q pinned TXID %d, but TXID %d was committed at %v, not after %v", value, txid, txid+1, commitTime[txid+1], lo)
			}
			if got != ltx.FormatTimestamp(commitTime[txid]) {
				t.Fatalf("ltx_time = %q returned %q, want the commit time of TXID %d", value, got, txid)
			}
		}
		if n := ints(t, db, `SELECT count(*) FROM t`)[0]; n != int64(txid)-1 {
			t.Fatalf("%s = %q: at TXID %d read %d rows, want %d", name, value, txid, n, txid-1)
		}
	})
}
