package vfs_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/vfs"
	"github.com/ltxvfs/ltxvfs/writer"
)

// primary is a database replicated into a local directory, for the
// examples: each commit goes into its own TXID.
type primary struct {
	dir, replica string
	app          *sql.DB
	rep          *writer.Replicator
}

func newPrimary() *primary {
	dir, err := os.MkdirTemp("", "ltxvfs-example-")
	if err != nil {
		log.Fatal(err)
	}
	p := &primary{dir: dir, replica: filepath.Join(dir, "replica")}
	path := filepath.Join(dir, "app.db")
	if p.app, err = sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(wal)"); err != nil {
		log.Fatal(err)
	}
	p.exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER)`)
	opts := writer.Options{SyncInterval: -1, SnapshotInterval: -1, CheckpointInterval: -1, Logger: slog.New(slog.DiscardHandler)}
	if p.rep, err = writer.New(path, file.New(p.replica), opts); err != nil {
		log.Fatal(err)
	}
	return p
}

// exec commits on the primary and replicates the commit; it returns its
// TXID.
func (p *primary) exec(query string, args ...any) int64 {
	if _, err := p.app.Exec(query, args...); err != nil {
		log.Fatal(err)
	}
	if p.rep == nil {
		return 0
	}
	if err := p.rep.Sync(context.Background()); err != nil {
		log.Fatal(err)
	}
	return int64(p.rep.TXID())
}

func (p *primary) close() {
	p.rep.Close(context.Background())
	p.app.Close()
	os.RemoveAll(p.dir)
}

// dsn names the replica in a DSN for the ltx VFS.
func (p *primary) dsn(params string) string {
	return "file:app.db?vfs=ltx&replica=" + url.QueryEscape(p.replica) + params
}

func count(q interface {
	QueryRow(string, ...any) *sql.Row
}, query string) int {
	var n int
	if err := q.QueryRow(query).Scan(&n); err != nil {
		log.Fatal(err)
	}
	return n
}

// A replica opened without txid= or time= follows the primary: each read
// transaction sees the newest TXID the poller has seen (every poll=, 1 s
// by default).
func Example_follow() {
	p := newPrimary()
	defer p.close()
	p.exec(`INSERT INTO orders (amount) VALUES (100)`)

	db, err := sql.Open("sqlite3", p.dsn("&poll=100ms"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	fmt.Println("orders:", count(db, `SELECT count(*) FROM orders`))

	p.exec(`INSERT INTO orders (amount) VALUES (200)`)
	n := count(db, `SELECT count(*) FROM orders`)
	for deadline := time.Now().Add(time.Minute); n < 2 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond) // the next poll brings it
		n = count(db, `SELECT count(*) FROM orders`)
	}
	fmt.Println("orders:", n)
	// Output:
	// orders: 1
	// orders: 2
}

// txid= pins a database at a TXID: it reads the database as it was right
// after that transaction, however far the primary has gone.
func Example_txid() {
	p := newPrimary()
	defer p.close()
	first := p.exec(`INSERT INTO orders (amount) VALUES (100)`)
	p.exec(`INSERT INTO orders (amount) VALUES (200)`)

	db, err := sql.Open("sqlite3", p.dsn(fmt.Sprintf("&txid=%d", first)))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	fmt.Println("orders at the first insert:", count(db, `SELECT count(*) FROM orders`))
	// Output:
	// orders at the first insert: 1
}

// PRAGMA ltx_txid moves one connection in time, and back to the newest
// TXID with latest; ltx_time reads or sets it by commit time. A PRAGMA
// applies to one connection: use a *sql.Conn.
func Example_pragma() {
	p := newPrimary()
	defer p.close()
	first := p.exec(`INSERT INTO orders (amount) VALUES (100)`)
	p.exec(`INSERT INTO orders (amount) VALUES (200)`)

	db, err := sql.Open("sqlite3", p.dsn(""))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	var txid int64
	if err := conn.QueryRowContext(ctx, fmt.Sprintf(`PRAGMA ltx_txid = %d`, first)).Scan(&txid); err != nil {
		log.Fatal(err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM orders`).Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println("pinned at the first insert:", txid == first, n, "order")
	if _, err := conn.ExecContext(ctx, `PRAGMA ltx_txid = latest`); err != nil {
		log.Fatal(err)
	}
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM orders`).Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println("following again:", n, "orders")
	// Output:
	// pinned at the first insert: true 1 order
	// following again: 2 orders
}

// ATTACH opens a second point in time in the same connection: one query
// compares the replica now with the replica then.
func Example_attach() {
	p := newPrimary()
	defer p.close()
	first := p.exec(`INSERT INTO orders (amount) VALUES (100)`)
	p.exec(`INSERT INTO orders (amount) VALUES (200), (300)`)

	db, err := sql.Open("sqlite3", p.dsn(""))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // an ATTACH belongs to one connection
	if _, err := db.Exec(`ATTACH ? AS old`, p.dsn(fmt.Sprintf("&txid=%d", first))); err != nil {
		log.Fatal(err)
	}
	rows, err := db.Query(`SELECT id, amount FROM main.orders WHERE id NOT IN (SELECT id FROM old.orders) ORDER BY id`)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, amount int
		if err := rows.Scan(&id, &amount); err != nil {
			log.Fatal(err)
		}
		fmt.Println("new since then:", id, amount)
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// new since then: 2 200
	// new since then: 3 300
}

// Attach binds a name to a replica in code, with options a DSN does not
// carry (a client, a logger, metrics); "file:NAME?vfs=ltx" then opens it.
func ExampleAttach() {
	p := newPrimary()
	defer p.close()
	p.exec(`INSERT INTO orders (amount) VALUES (100), (200)`)

	err := vfs.Attach("orders-replica", vfs.Options{
		URL:        p.replica, // or Client: a storage.Client
		CacheBytes: 16 << 20,
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer vfs.Detach("orders-replica")
	db, err := sql.Open("sqlite3", "file:orders-replica?vfs=ltx")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	fmt.Println("sum:", count(db, `SELECT sum(amount) FROM orders`))
	// Output:
	// sum: 300
}
