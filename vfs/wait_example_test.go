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

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/ltxvfs/ltxvfs/storage/file"
	_ "github.com/ltxvfs/ltxvfs/vfs"
	"github.com/ltxvfs/ltxvfs/writer"
)

// An application commits on its primary, asks the writer it embeds for a
// read-your-writes token, and a reader of the replica waits for the token
// before it reads: it sees the commit, though it polls only once an hour.
// (With ltx-writer replicate in its own process, the token comes from
// GET http://METRICS-ADDR/sync?db=PATH instead.)
func Example_readYourWrites() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ltxvfs-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")

	app, err := sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(wal)")
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	if _, err := app.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)`); err != nil {
		log.Fatal(err)
	}
	rep, err := writer.New(path, file.New(replica), writer.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	if err := rep.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer rep.Close(ctx)
	if _, err := rep.SyncToken(ctx); err != nil { // the replica exists before the reader opens it
		log.Fatal(err)
	}

	reader, err := sql.Open("sqlite3", "file:app.db?vfs=ltx&poll=1h&replica="+url.QueryEscape(replica))
	if err != nil {
		log.Fatal(err)
	}
	defer reader.Close()
	conn, err := reader.Conn(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM orders`).Scan(&n); err != nil {
		log.Fatal(err)
	}

	// The application's write, and its token.
	if _, err := app.Exec(`INSERT INTO orders (item) VALUES ('coffee')`); err != nil {
		log.Fatal(err)
	}
	tok, err := rep.SyncToken(ctx)
	if err != nil {
		log.Fatal(err)
	}

	// The reader, given the token.
	var txid int64
	if err := conn.QueryRowContext(ctx, `PRAGMA ltx_wait = '`+tok+`'`).Scan(&txid); err != nil {
		log.Fatal(err)
	}
	var item string
	if err := conn.QueryRowContext(ctx, `SELECT item FROM orders WHERE id = 1`).Scan(&item); err != nil {
		log.Fatal(err)
	}
	fmt.Println("orders before:", n)
	fmt.Println("after the wait:", item)
	// Output:
	// orders before: 0
	// after the wait: coffee
}
