package vfs

import (
	"context"
	"database/sql"
	"testing"
)

// database/sql transactions work on the DSN the README gives, with nothing
// added: the ncruces driver (v0.37 on) begins db.Begin() with BEGIN
// IMMEDIATE, which needs no write lock here because the VFS opens the
// database read-only, and BeginTx(ReadOnly) with a deferred BEGIN. Either
// way a transaction reads one TXID from its first statement to COMMIT,
// however many commits the replica gets meanwhile.
func TestDatabaseSQLTransactions(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY)`)
	src.exec(`INSERT INTO t(id) VALUES (1)`)
	db := src.open()

	begins := []struct {
		name  string
		begin func() (*sql.Tx, error)
	}{
		{"db.Begin()", func() (*sql.Tx, error) { return db.Begin() }},
		{"BeginTx(ctx, nil)", func() (*sql.Tx, error) { return db.BeginTx(ctx, nil) }},
		{"BeginTx(ReadOnly)", func() (*sql.Tx, error) { return db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) }},
	}
	for _, b := range begins {
		rows := one[int64](t, db, `SELECT count(*) FROM t`)
		tx, err := b.begin()
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		if got := one[int64](t, tx, `SELECT count(*) FROM t`); got != rows {
			t.Fatalf("%s: the transaction's first read counts %d rows, want %d", b.name, got, rows)
		}
		txid := one[int64](t, tx, `PRAGMA ltx_txid`)

		// A commit on the primary, seen by the replica while the
		// transaction is open.
		latest := src.exec(`INSERT INTO t(id) SELECT max(id) + 1 FROM t`)
		pollNow(t, src.key())
		if got := one[int64](t, tx, `SELECT count(*) FROM t`); got != rows {
			t.Errorf("%s: after a commit on the primary the transaction counts %d rows, want still %d", b.name, got, rows)
		}
		if got := one[int64](t, tx, `PRAGMA ltx_txid`); got != txid {
			t.Errorf("%s: the transaction moved from TXID %d to %d", b.name, txid, got)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("%s: commit: %v", b.name, err)
		}
		// Outside the transaction, a plain query sees the new commit.
		if got := one[int64](t, db, `SELECT count(*) FROM t`); got != rows+1 {
			t.Errorf("%s: after COMMIT a query counts %d rows, want %d", b.name, got, rows+1)
		}
		if got := one[int64](t, db, `PRAGMA ltx_txid`); got != int64(latest) {
			t.Errorf("%s: after COMMIT ltx_txid = %d, want %d", b.name, got, latest)
		}
	}
}

// When the TXID is chosen, as the README says: db.Begin() (BEGIN
// IMMEDIATE, a read transaction at once on a read-only database) takes the
// latest TXID at Begin; BeginTx(ReadOnly) and a DSN with _txlock=deferred
// take it at the first read.
func TestWhenATransactionTakesItsTXID(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY)`)
	atBegin := src.exec(`INSERT INTO t(id) VALUES (1)`)
	immediate, deferred := src.open(), src.open("_txlock=deferred")
	for _, db := range []*sql.DB{immediate, deferred} {
		one[int64](t, db, `SELECT count(*) FROM t`) // opens the replica
	}

	cases := []struct {
		name  string
		begin func() (*sql.Tx, error)
		// atBegin: the transaction sees the TXID current at Begin, not
		// the one committed between Begin and its first read.
		atBegin bool
	}{
		{"db.Begin()", func() (*sql.Tx, error) { return immediate.Begin() }, true},
		{"BeginTx(ReadOnly)", func() (*sql.Tx, error) { return immediate.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) }, false},
		{"db.Begin() with _txlock=deferred", func() (*sql.Tx, error) { return deferred.Begin() }, false},
	}
	for _, c := range cases {
		pollNow(t, src.key())
		tx, err := c.begin()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		latest := src.exec(`INSERT INTO t(id) SELECT max(id) + 1 FROM t`)
		pollNow(t, src.key())
		want := latest
		if c.atBegin {
			want = atBegin
		}
		if got := one[int64](t, tx, `SELECT max(id) FROM t`); got != int64(want)-1 {
			t.Errorf("%s: the first read sees max(id) %d, want %d (TXID %d)", c.name, got, want-1, want)
		}
		if got := one[int64](t, tx, `PRAGMA ltx_txid`); got != int64(want) {
			t.Errorf("%s: ltx_txid = %d, want %d", c.name, got, want)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		atBegin = latest
	}
}
