package reliability

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
)

// The bank: accounts whose balances only move between each other, in
// transactions, so that their sum never changes; and the log of transfers,
// so that each balance is its opening balance plus what the log moved in
// and out. Now and then a transaction folds the oldest transfers into the
// opening balances and deletes them, which frees pages and shrinks the log.

const (
	bankAccounts = 400
	bankOpening  = 1000
	bankTotal    = bankAccounts * bankOpening
)

var bankSchema = fmt.Sprintf(`
CREATE TABLE accounts (id INTEGER PRIMARY KEY, opening INTEGER NOT NULL, balance INTEGER NOT NULL, pad TEXT NOT NULL);
CREATE TABLE transfers (id INTEGER PRIMARY KEY, src INTEGER NOT NULL, dst INTEGER NOT NULL, amount INTEGER NOT NULL);
WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < %d)
INSERT INTO accounts (id, opening, balance, pad) SELECT id, %d, %d, printf('%%.*c', 40 + id %% 80, 'x') FROM n;`,
	bankAccounts, bankOpening, bankOpening)

// bank runs transfers on the primary.
type bank struct {
	db   *sql.DB
	rng  *rand.Rand
	txns int64
}

// transfer commits one transaction of 1..5 transfers, or every 50th, a
// fold of the older transfers.
func (b *bank) transfer(ctx context.Context) error {
	b.txns++
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if b.txns%50 == 0 {
		var upTo int64
		if err := tx.QueryRow(`SELECT coalesce(max(id), 0) - 100 FROM transfers`).Scan(&upTo); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE accounts SET opening = opening + coalesce((
			SELECT sum(CASE WHEN dst = accounts.id THEN amount ELSE -amount END)
			FROM transfers WHERE id <= ?1 AND (src = accounts.id OR dst = accounts.id)), 0)`, upTo); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM transfers WHERE id <= ?`, upTo); err != nil {
			return err
		}
		return tx.Commit()
	}
	for range 1 + b.rng.IntN(5) {
		src, dst := 1+b.rng.IntN(bankAccounts), 1+b.rng.IntN(bankAccounts)
		amount := 1 + b.rng.IntN(500)
		if src == dst {
			continue
		}
		if _, err := tx.Exec(`UPDATE accounts SET balance = balance - ? WHERE id = ?`, amount, src); err != nil {
			return err
		}
		// The pad changes length, so rows move between pages.
		if _, err := tx.Exec(`UPDATE accounts SET balance = balance + ?, pad = printf('%.*c', ?, 'y') WHERE id = ?`, amount, 20+b.rng.IntN(200), dst); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO transfers (src, dst, amount) VALUES (?, ?, ?)`, src, dst, amount); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// bankState is what one read transaction saw.
type bankState struct {
	txid   string // PRAGMA ltx_txid in the transaction ("" on the primary)
	digest uint64 // every balance and opening balance, and the transfer log's extent
}

// errViolation marks a broken invariant: wrong rows, never an I/O error.
var errViolation = errors.New("invariant violated")

// checkBank checks the bank's invariants in one read transaction on conn
// and returns what it saw. A broken invariant wraps errViolation; any
// other error is the read's.
func checkBank(ctx context.Context, conn *sql.Conn, withTXID bool) (bankState, error) {
	var st bankState
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, opening, balance FROM accounts ORDER BY id`)
	if err != nil {
		return st, err
	}
	h := fnv.New64a()
	var n, sumBalance, sumOpening int64
	for rows.Next() {
		var id, opening, balance int64
		if err := rows.Scan(&id, &opening, &balance); err != nil {
			rows.Close()
			return st, err
		}
		n++
		if id != n {
			rows.Close()
			return st, fmt.Errorf("%w: account %d follows account %d", errViolation, id, n-1)
		}
		sumBalance += balance
		sumOpening += opening
		fmt.Fprintf(h, "%d:%d:%d,", id, opening, balance)
	}
	if err := rows.Err(); err != nil {
		return st, err
	}
	rows.Close()
	if withTXID {
		// Only now: BEGIN is deferred, and the transaction's TXID is
		// fixed by its first read, not by BEGIN.
		if err := tx.QueryRowContext(ctx, `PRAGMA ltx_txid`).Scan(&st.txid); err != nil {
			return st, fmt.Errorf("PRAGMA ltx_txid: %w", err)
		}
	}
	if n != bankAccounts || sumBalance != bankTotal || sumOpening != bankTotal {
		return st, fmt.Errorf("%w: %d accounts, balances sum to %d, opening balances to %d (want %d, %d, %d)",
			errViolation, n, sumBalance, sumOpening, bankAccounts, bankTotal, bankTotal)
	}
	var count, lo, hi int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0) FROM transfers`).Scan(&count, &lo, &hi); err != nil {
		return st, err
	}
	if count > 0 && count != hi-lo+1 {
		return st, fmt.Errorf("%w: %d transfers between IDs %d and %d: some are missing", errViolation, count, lo, hi)
	}
	var bad int64
	var sample sql.NullString
	if err := tx.QueryRowContext(ctx, `
		SELECT count(*), group_concat(a.id || ': ' || a.balance || ' != ' || a.opening || ' + ' || coalesce(x.d, 0), '; ')
		FROM accounts a LEFT JOIN (
			SELECT acct, sum(d) AS d FROM (
				SELECT dst AS acct, amount AS d FROM transfers
				UNION ALL SELECT src, -amount FROM transfers)
			GROUP BY acct) x ON x.acct = a.id
		WHERE a.balance != a.opening + coalesce(x.d, 0)`).Scan(&bad, &sample); err != nil {
		return st, err
	}
	if bad != 0 {
		return st, fmt.Errorf("%w: %d balances do not follow from their transfers (%s)", errViolation, bad, truncate(sample.String, 300))
	}
	fmt.Fprintf(h, "transfers %d-%d", lo, hi)
	st.digest = h.Sum64()
	if withTXID {
		// The TXID cannot change within the transaction.
		var again string
		if err := tx.QueryRowContext(ctx, `PRAGMA ltx_txid`).Scan(&again); err != nil {
			return st, fmt.Errorf("PRAGMA ltx_txid: %w", err)
		}
		if again != st.txid {
			return st, fmt.Errorf("%w: the read transaction began at TXID %s and ended at %s", errViolation, st.txid, again)
		}
	}
	return st, tx.Commit()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// digests remembers what each TXID holds, as first read: a TXID must
// read the same every time, on every connection.
type digests struct {
	mu   sync.Mutex
	m    map[string]uint64
	list []string // TXIDs in the order first seen
}

func newDigests() *digests { return &digests{m: map[string]uint64{}} }

// see records st, or compares it with what its TXID held before.
func (d *digests) see(st bankState) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.m[st.txid]; ok {
		if old != st.digest {
			return fmt.Errorf("%w: TXID %s read different rows than before", errViolation, st.txid)
		}
		return nil
	}
	d.m[st.txid] = st.digest
	d.list = append(d.list, st.txid)
	return nil
}

// pick returns a TXID seen: mostly a recent one, which a connection can
// still open and then hold while retention removes its files, else any.
func (d *digests) pick(rng *rand.Rand) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(d.list)
	if n == 0 {
		return "", false
	}
	if rng.IntN(4) == 0 {
		return d.list[rng.IntN(n)], true
	}
	return d.list[n-1-rng.IntN(min(n, 3))], true
}

// errorKinds counts errors by their gist, for the report.
type errorKinds struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *errorKinds) add(err error) {
	msg := err.Error()
	// Drop file names and numbers: the gist is what is left.
	var b strings.Builder
	for _, f := range strings.Fields(msg) {
		if strings.ContainsAny(f, "0123456789") {
			f = "N"
		}
		b.WriteString(f)
		b.WriteByte(' ')
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	e.m[truncate(b.String(), 160)]++
}

func (e *errorKinds) total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.m {
		n += c
	}
	return n
}

func (e *errorKinds) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var parts []string
	for k, c := range e.m {
		parts = append(parts, fmt.Sprintf("%d× %s", c, k))
	}
	return strings.Join(parts, "\n")
}
