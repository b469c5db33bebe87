package reliability

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// The crash loop's workload: transaction k of a seeded run is a pure
// function of (seed, k), applied to the database and to an in-memory model
// at once, and it records k in the table txlog. Any copy of the database,
// a restore or a VFS read at some TXID, names the last transaction it
// holds (max(k) in txlog) and must then hold exactly the model's rows
// after that transaction: a fingerprint of every row compares the two.

const modelSchema = `
CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS txlog (k INTEGER PRIMARY KEY, ops INTEGER NOT NULL);`

// maxRows is about the most rows t holds: some 1,500 pages of 4 KiB.
const maxRows = 3000

// fingerprint is an order-independent digest of the rows of t: their
// number and the sum of a hash of each.
type fingerprint struct {
	rows int64
	sum  uint64
}

func rowHash(id int64, v string, n int64) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d|%s|%d", id, v, n)
	return h.Sum64()
}

type row struct {
	v string
	n int64
}

// model is the state the workload's transactions produce, and the
// fingerprint after each of them.
type model struct {
	seed uint64

	mu     sync.Mutex
	rows   map[int64]row
	ids    []int64       // the keys of rows, for picking one at random
	pos    map[int64]int // index of each id in ids
	nextID int64
	fps    []fingerprint // fps[k]: after transaction k (fps[0]: empty)
	cur    fingerprint
}

func newModel(seed uint64) *model {
	return &model{seed: seed, rows: map[int64]row{}, pos: map[int64]int{}, nextID: 1, fps: []fingerprint{{}}}
}

// committed is the number of transactions committed so far.
func (m *model) committed() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.fps) - 1)
}

// after is the fingerprint after transaction k.
func (m *model) after(k int64) (fingerprint, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k < 0 || k >= int64(len(m.fps)) {
		return fingerprint{}, false
	}
	return m.fps[k], true
}

// op is one statement of a transaction.
type op struct {
	kind byte // 'i', 'u', 'd'
	id   int64
	v    string
	n    int64
}

// plan draws transaction k's statements against the current model.
func (m *model) plan(k int64) []op {
	m.mu.Lock()
	defer m.mu.Unlock()
	rng := rand.New(rand.NewPCG(m.seed, uint64(k)))
	nOps := 1 + rng.IntN(20)
	ops := make([]op, 0, nOps)
	next := m.nextID
	picked := map[int64]bool{}
	// Past maxRows, deletes outnumber inserts: the database stays small
	// enough to read whole at every TXID, yet keeps changing size.
	deleteUpTo := 38
	if len(m.ids) > maxRows {
		deleteUpTo = 80
	}
	for range nOps {
		r := rng.IntN(100)
		switch {
		case r < 25 && len(m.ids) > 0:
			id := m.ids[rng.IntN(len(m.ids))]
			if picked[id] {
				continue
			}
			ops = append(ops, op{kind: 'u', id: id, v: value(rng), n: rng.Int64N(1 << 40)})
		case r < deleteUpTo && len(m.ids) > 0:
			id := m.ids[rng.IntN(len(m.ids))]
			if picked[id] {
				continue
			}
			picked[id] = true
			ops = append(ops, op{kind: 'd', id: id})
		default:
			ops = append(ops, op{kind: 'i', id: next, v: value(rng), n: rng.Int64N(1 << 40)})
			picked[next] = true
			next++
		}
	}
	return ops
}

// value is a text of 20..600 bytes, so that pages split and overflow.
func value(rng *rand.Rand) string {
	n := 20 + rng.IntN(580)
	var b strings.Builder
	for b.Len() < n {
		fmt.Fprintf(&b, "%x", rng.Uint64())
	}
	return b.String()[:n]
}

// apply records transaction k (ops) as committed.
func (m *model) apply(k int64, ops []op) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if int64(len(m.fps)) != k {
		panic(fmt.Sprintf("model: transaction %d applied after %d", k, len(m.fps)-1))
	}
	for _, o := range ops {
		if old, ok := m.rows[o.id]; ok {
			m.cur.sum -= rowHash(o.id, old.v, old.n)
			m.cur.rows--
		}
		switch o.kind {
		case 'i', 'u':
			m.rows[o.id] = row{o.v, o.n}
			m.cur.sum += rowHash(o.id, o.v, o.n)
			m.cur.rows++
			if _, ok := m.pos[o.id]; !ok {
				m.pos[o.id] = len(m.ids)
				m.ids = append(m.ids, o.id)
			}
			m.nextID = max(m.nextID, o.id+1)
		case 'd':
			delete(m.rows, o.id)
			i := m.pos[o.id]
			last := m.ids[len(m.ids)-1]
			m.ids[i], m.pos[last] = last, i
			m.ids = m.ids[:len(m.ids)-1]
			delete(m.pos, o.id)
		}
	}
	m.fps = append(m.fps, m.cur)
}

// runTxn runs transaction k on db and, once committed, in the model.
func (m *model) runTxn(ctx context.Context, db *sql.DB, k int64) error {
	ops := m.plan(k)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("transaction %d: %w", k, err)
	}
	defer tx.Rollback()
	for _, o := range ops {
		switch o.kind {
		case 'i':
			_, err = tx.Exec(`INSERT INTO t (id, v, n) VALUES (?, ?, ?)`, o.id, o.v, o.n)
		case 'u':
			_, err = tx.Exec(`UPDATE t SET v = ?, n = ? WHERE id = ?`, o.v, o.n, o.id)
		case 'd':
			_, err = tx.Exec(`DELETE FROM t WHERE id = ?`, o.id)
		}
		if err != nil {
			return fmt.Errorf("transaction %d: %w", k, err)
		}
	}
	if _, err := tx.Exec(`INSERT INTO txlog (k, ops) VALUES (?, ?)`, k, len(ops)); err != nil {
		return fmt.Errorf("transaction %d: %w", k, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("transaction %d: commit: %w", k, err)
	}
	m.apply(k, ops)
	return nil
}

// querier is a *sql.DB, *sql.Conn or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readState reads, in one read transaction when q is a *sql.Tx, the last
// transaction a database holds and the fingerprint of its rows.
func readState(ctx context.Context, q querier) (k int64, fp fingerprint, err error) {
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(k), 0) FROM txlog`).Scan(&k); err != nil {
		return 0, fp, fmt.Errorf("read txlog: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT id, v, n FROM t`)
	if err != nil {
		return 0, fp, fmt.Errorf("read t: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, n int64
		var v string
		if err := rows.Scan(&id, &v, &n); err != nil {
			return 0, fp, fmt.Errorf("read t: %w", err)
		}
		fp.rows++
		fp.sum += rowHash(id, v, n)
	}
	if err := rows.Err(); err != nil {
		return 0, fp, fmt.Errorf("read t: %w", err)
	}
	return k, fp, nil
}

// recordWait bounds how long check waits for the model to record a
// transaction read ahead of it.
const recordWait = 5 * time.Second

// check compares a state read from a copy of the database with the model.
// The load records a transaction after its commit returns, so a reader
// running beside it (a follower, a restore) may read one the model does
// not hold yet: such a state is given until the model records it, at most
// recordWait (a goroutine descheduled on a loaded machine; seen once).
func (m *model) check(k int64, fp fingerprint) error {
	for deadline := time.Now().Add(recordWait); k > m.committed() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	want, ok := m.after(k)
	if !ok {
		return fmt.Errorf("holds transaction %d, which was never committed (%d were)", k, m.committed())
	}
	if fp != want {
		return fmt.Errorf("holds transaction %d but not its rows: %d rows (sum %x), the source had %d rows (sum %x) after it", k, fp.rows, fp.sum, want.rows, want.sum)
	}
	return nil
}
