package vfs

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/superfly/ltx"
)

// Rule 3: a compacted L1 that lands after newer L0 files never rolls a page
// back to its older version.
func TestLateL1NeverRollsBack(t *testing.T) {
	src := newSource(t, 1024)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)                                // 1
	src.exec(`INSERT INTO t(id, v) SELECT value, 'old' FROM generate_series(1, 40)`)          // 2
	src.exec(`UPDATE t SET v = 'mid'`)                                                        // 3
	src.exec(`UPDATE t SET v = 'new'`)                                                        // 4
	last := src.exec(`INSERT INTO t(id, v) SELECT value, 'new' FROM generate_series(41, 60)`) // 5
	db := src.open("poll=1h")
	db.SetMaxOpenConns(1)
	check := func(when string) {
		t.Helper()
		if got := ints(t, db, `SELECT count(*) FROM t WHERE v = 'new'`); got[0] != 60 {
			t.Fatalf("%s: %v rows at 'new', want 60", when, got)
		}
		if got := one[string](t, db, `PRAGMA ltx_txid`); got != "5" {
			t.Fatalf("%s: ltx_txid = %s, want %d", when, got, last)
		}
	}
	check("before the L1")

	// The compaction of 1..3 arrives after 4 and 5 were indexed.
	src.compact(1, 1, 3)
	pollNow(t, src.key())
	check("after a late L1 of 1..3")

	// A fresh connection, pinned to the L1's TXID, sees TXID 3 exactly.
	old := src.open("txid=3")
	if got := ints(t, old, `SELECT count(*) FROM t WHERE v = 'mid'`); got[0] != 40 {
		t.Fatalf("txid=3: %v rows at 'mid', want 40", got)
	}

	// Retention then removes the L0 files the L1 covers.
	src.remove(0, [2]ltx.TXID{1, 1}, [2]ltx.TXID{2, 2}, [2]ltx.TXID{3, 3})
	pollNow(t, src.key())
	check("after retention of L0 1..3")
	fresh := src.open()
	if got := ints(t, fresh, `SELECT count(*) FROM t WHERE v = 'new'`); got[0] != 60 {
		t.Fatalf("new connection after retention: %v rows at 'new', want 60", got)
	}
}

// Rule 4: the size is the pinned Commit; a database that shrinks, with only
// some pages rewritten, reads correctly at every TXID.
func TestShrinkingDatabase(t *testing.T) {
	src := newSource(t, 1024)
	src.exec(`CREATE TABLE keep(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`CREATE TABLE big(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`INSERT INTO keep(id, v) SELECT value, 'k' FROM generate_series(1, 30)`)
	grown := src.exec(`INSERT INTO big(id, v) SELECT value, printf('%0300d', value) FROM generate_series(1, 400)`)
	src.exec(`DELETE FROM big WHERE id > 100`)
	incr := src.exec(`PRAGMA incremental_vacuum`)
	src.exec(`DROP TABLE big`)
	vacuumed := src.exec(`VACUUM`)

	sizes := map[ltx.TXID]uint32{}
	for _, txid := range []ltx.TXID{grown, incr, vacuumed} {
		sizes[txid] = storageCommit(t, src, txid)
	}
	if !(sizes[grown] > sizes[incr] && sizes[incr] > sizes[vacuumed]) {
		t.Fatalf("the primary did not shrink: commits %v", sizes)
	}

	for _, tt := range []struct {
		txid      ltx.TXID
		keep, big int64
	}{{grown, 30, 400}, {incr, 30, 100}, {vacuumed, 30, -1}} {
		db := src.open("txid=" + tt.txid.String())
		if got := ints(t, db, `SELECT count(*) FROM keep`); got[0] != tt.keep {
			t.Errorf("txid %d: keep has %v rows, want %d", tt.txid, got, tt.keep)
		}
		if tt.big >= 0 {
			if got := ints(t, db, `SELECT count(*) FROM big`); got[0] != tt.big {
				t.Errorf("txid %d: big has %v rows, want %d", tt.txid, got, tt.big)
			}
		}
		if got := one[string](t, db, `PRAGMA integrity_check`); got != "ok" {
			t.Errorf("txid %d: integrity_check: %s", tt.txid, got)
		}
		if got := one[int64](t, db, `PRAGMA page_count`); uint32(got) != sizes[tt.txid] {
			t.Errorf("txid %d: page_count %d, want the Commit %d", tt.txid, got, sizes[tt.txid])
		}
		db.Close()
	}

	// A following connection that saw the big database sees it shrink.
	db := src.open("txid=" + grown.String())
	db.SetMaxOpenConns(1)
	ints(t, db, `SELECT count(*) FROM big`)
	if _, err := db.Exec(`PRAGMA ltx_txid = latest`); err != nil {
		t.Fatal(err)
	}
	if got := one[int64](t, db, `PRAGMA page_count`); uint32(got) != sizes[vacuumed] {
		t.Errorf("after following again: page_count %d, want %d", got, sizes[vacuumed])
	}
	if got := one[string](t, db, `PRAGMA integrity_check`); got != "ok" {
		t.Errorf("after following again: integrity_check: %s", got)
	}
}

// storageCommit is the Commit of a TXID's L0 file.
func storageCommit(tb testing.TB, src *source, txid ltx.TXID) uint32 {
	tb.Helper()
	return headerOf(tb, src.files[txid]).Commit
}

// Rule 5: a file that vanished after the version was built (retention)
// makes the VFS rebuild the same TXID from what is left; never a wrong page.
func TestVanishedFileReplans(t *testing.T) {
	src := newSource(t, 1024)
	src.exec(`CREATE TABLE a(id INTEGER PRIMARY KEY)`)
	src.exec(`CREATE TABLE b(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`INSERT INTO b(id, v) SELECT value, 'b' FROM generate_series(1, 100)`)
	src.exec(`INSERT INTO a(id) SELECT value FROM generate_series(1, 10)`) // 4

	db := src.open("poll=1h")
	db.SetMaxOpenConns(1)
	if got := ints(t, db, `SELECT count(*) FROM a`); got[0] != 10 {
		t.Fatal(got)
	}
	// Compaction, then retention of what it replaced, behind the index's
	// back: the pages of b (TXID 3) are in a file that no longer exists.
	src.compact(1, 1, 4)
	src.remove(0, [2]ltx.TXID{1, 1}, [2]ltx.TXID{2, 2}, [2]ltx.TXID{3, 3}, [2]ltx.TXID{4, 4})
	if got := ints(t, db, `SELECT count(*) FROM b WHERE v = 'b'`); got[0] != 100 {
		t.Fatalf("after the files vanished: %v rows of b, want 100", got)
	}
	if got := one[string](t, db, `PRAGMA ltx_txid`); got != "4" {
		t.Fatalf("ltx_txid = %s, want 4 (the same TXID, rebuilt)", got)
	}
}

// Rule 5, the other way out: when no retained files rebuild the pinned TXID
// any more, reads fail with an error that says so.
func TestVanishedTXIDIsAnError(t *testing.T) {
	src := newSource(t, 1024)
	src.exec(`CREATE TABLE a(id INTEGER PRIMARY KEY)`)
	src.exec(`CREATE TABLE b(id INTEGER PRIMARY KEY, v TEXT)`)
	// 3: a file larger than what is read with its page index (its first
	// 64 KiB), so that the query below needs pages only the file holds.
	src.exec(`INSERT INTO b(id, v) SELECT value, randomblob(900) FROM generate_series(1, 400)`)
	src.exec(`INSERT INTO a(id) SELECT value FROM generate_series(1, 10)`) // 4

	db := src.open("txid=3")
	db.SetMaxOpenConns(1)
	if got := ints(t, db, `SELECT count(*) FROM a`); got[0] != 0 {
		t.Fatal(got)
	}
	src.compact(1, 1, 4)
	src.remove(0, [2]ltx.TXID{1, 1}, [2]ltx.TXID{2, 2}, [2]ltx.TXID{3, 3}, [2]ltx.TXID{4, 4})
	rows, err := db.QueryContext(context.Background(), `SELECT count(*) FROM b`)
	if err == nil {
		defer rows.Close()
		for rows.Next() {
		}
		err = rows.Err()
	}
	if err == nil {
		t.Fatalf("read at a TXID that can no longer be rebuilt: no error")
	}
	for _, want := range []string{"L0/0000000000000003-0000000000000003.ltx", "TXID 3 cannot be rebuilt"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if slices.Contains([]string{"sqlite3: disk I/O error"}, err.Error()) {
		t.Errorf("bare error %q", err)
	}
}

// The schema is the TXID's: a table created later does not exist at an
// earlier TXID, and appears when the connection moves on.
func TestSchemaFollowsTheTXID(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(x)`)                  // 1
	src.exec(`CREATE TABLE u(y)`)                  // 2
	src.exec(`INSERT INTO u VALUES (1), (2), (3)`) // 3
	c := conn(t, src.open("txid=1"))
	if _, err := c.ExecContext(context.Background(), `SELECT * FROM u`); err == nil || !strings.Contains(err.Error(), "no such table: u") {
		t.Fatalf("table u at TXID 1: %v, want no such table", err)
	}
	if got := one[string](t, c, `PRAGMA ltx_txid = latest`); got != "3" {
		t.Fatal(got)
	}
	if got := ints(t, c, `SELECT count(*) FROM u`); got[0] != 3 {
		t.Fatalf("table u at TXID 3: %v rows, want 3", got)
	}
	if got := one[string](t, c, `PRAGMA ltx_txid = 2`); got != "2" {
		t.Fatal(got)
	}
	if got := ints(t, c, `SELECT count(*) FROM u`); got[0] != 0 {
		t.Fatalf("table u at TXID 2: %v rows, want 0", got)
	}
}

// Opening at a TXID that retention made unreachable is an error that says
// so.
func TestOpenAtRetainedAwayTXID(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(x)`)
	src.exec(`INSERT INTO t VALUES (1)`)
	src.exec(`INSERT INTO t VALUES (2)`)
	src.compact(1, 1, 3)
	src.remove(0, [2]ltx.TXID{1, 1}, [2]ltx.TXID{2, 2}, [2]ltx.TXID{3, 3})
	db := src.open("txid=2")
	_, err := db.Exec(`SELECT * FROM t`)
	if err == nil || !strings.Contains(err.Error(), "txid=2") || !strings.Contains(err.Error(), "not restorable") {
		t.Fatalf("open at a TXID retention removed: %v", err)
	}
	if got := ints(t, src.open("txid=3"), `SELECT count(*) FROM t`); got[0] != 2 {
		t.Fatalf("txid=3, from the compaction: %v rows, want 2", got)
	}
}

// A read error in one schema of a query that joins two reaches the caller
// with its message, though the other schema's file is unlocked after it.
func TestReadErrorMessageAcrossAttachedSchemas(t *testing.T) {
	src := newSource(t, 1024)
	src.exec(`CREATE TABLE a(id INTEGER PRIMARY KEY)`)
	src.exec(`CREATE TABLE b(id INTEGER PRIMARY KEY, v TEXT)`)
	// 3: a file larger than what is read with its page index (its first
	// 64 KiB), so that the join below needs pages only the file holds.
	src.exec(`INSERT INTO b(id, v) SELECT value, randomblob(900) FROM generate_series(1, 400)`)
	src.exec(`INSERT INTO a(id) SELECT value FROM generate_series(1, 10)`) // 4
	other := newSource(t, 1024)
	other.exec(`CREATE TABLE c(id INTEGER PRIMARY KEY)`)
	other.exec(`INSERT INTO c(id) SELECT value FROM generate_series(1, 100)`)

	db := src.open("txid=3")
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`ATTACH ? AS other`, other.dsn()); err != nil {
		t.Fatal(err)
	}
	ints(t, db, `SELECT count(*) FROM other.c`)
	src.compact(1, 1, 4)
	src.remove(0, [2]ltx.TXID{1, 1}, [2]ltx.TXID{2, 2}, [2]ltx.TXID{3, 3}, [2]ltx.TXID{4, 4})
	var n int64
	err := db.QueryRow(`SELECT count(*) FROM other.c JOIN main.b USING (id)`).Scan(&n)
	if err == nil || !strings.Contains(err.Error(), "L0/0000000000000003-0000000000000003.ltx") {
		t.Fatalf("join with a schema whose files vanished: %v, want an error naming the file", err)
	}
}
