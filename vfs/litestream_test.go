package vfs

import (
	"database/sql"
	"net/url"
	"strconv"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/fixture"
)

// A replica in Litestream v0.5's layout (L0 files, an L1 compaction, a
// snapshot, foreign files) reads as the manifest says at every TXID, at the
// latest, and by time.
func TestLitestreamFixture(t *testing.T) {
	dir := t.TempDir()
	m, err := fixture.Copy(dir)
	if err != nil {
		t.Fatal(err)
	}
	dsn := func(extra string) string {
		return "file:fixture.db?vfs=ltx&replica=" + url.QueryEscape(dir) + extra
	}
	check := func(db *sql.DB, st fixture.State, how string) {
		t.Helper()
		var rows, sumN int64
		var names, minName, maxName string
		if err := db.QueryRow(m.Query).Scan(&rows, &sumN, &names); err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		if err := st.CheckQuery(rows, sumN, names); err != nil {
			t.Errorf("%s: %v", how, err)
		}
		if err := db.QueryRow(m.IndexQuery).Scan(&minName, &maxName); err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		if err := st.CheckIndexQuery(minName, maxName); err != nil {
			t.Errorf("%s: %v", how, err)
		}
		if got := one[int64](t, db, `PRAGMA page_count`); uint32(got) != st.PageCount {
			t.Errorf("%s: page_count %d, want %d", how, got, st.PageCount)
		}
		if got := one[string](t, db, `PRAGMA integrity_check`); got != "ok" {
			t.Errorf("%s: integrity_check: %s", how, got)
		}
	}
	for _, st := range m.States {
		db := openDB(t, dsn("&txid="+strconv.FormatUint(uint64(st.TXID), 10)))
		check(db, st, "txid="+strconv.FormatUint(uint64(st.TXID), 10))
		db.Close()
		db = openDB(t, dsn("&time="+url.QueryEscape(st.Timestamp)))
		check(db, st, "time="+st.Timestamp)
		if got := one[string](t, db, `PRAGMA ltx_txid`); got != strconv.FormatUint(uint64(st.TXID), 10) {
			t.Errorf("time=%s: ltx_txid %s, want %d", st.Timestamp, got, st.TXID)
		}
		db.Close()
	}
	db := openDB(t, dsn(""))
	check(db, m.Latest(), "latest")
}
