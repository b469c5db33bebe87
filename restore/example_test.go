package restore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// Run rebuilds a replica's database into a local file, at its newest TXID
// or, as here, at an earlier one.
func ExampleRun() {
	dir, err := os.MkdirTemp("", "ltxvfs-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A database replicated after each of two inserts.
	path := filepath.Join(dir, "app.db")
	app, err := sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(wal)")
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	if _, err := app.Exec(`CREATE TABLE t (v)`); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	rep, err := writer.New(path, file.New(filepath.Join(dir, "replica")), writer.Options{SyncInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer rep.Close(ctx)
	var txids []uint64
	for _, q := range []string{`INSERT INTO t VALUES ('first')`, `INSERT INTO t VALUES ('second')`} {
		if _, err := app.Exec(q); err != nil {
			log.Fatal(err)
		}
		if err := rep.Sync(ctx); err != nil {
			log.Fatal(err)
		}
		txids = append(txids, uint64(rep.TXID()))
	}

	// Restore as of the first insert.
	out := filepath.Join(dir, "restored.db")
	res, err := restore.Run(ctx, file.New(filepath.Join(dir, "replica")), out, restore.Options{TXID: ltx.TXID(txids[0])})
	if err != nil {
		log.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+out+"?mode=ro")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow(`SELECT group_concat(v) FROM t`).Scan(&v); err != nil {
		log.Fatal(err)
	}
	fmt.Println(uint64(res.TXID) == txids[0], v)
	// Output:
	// true first
}
