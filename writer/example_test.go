package writer_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// An application embeds a Replicator: it replicates the application's own
// database (in WAL mode) while the application writes to it, and stops
// with a final sync. Here the replica is a local directory; an s3:// URL
// (storage.Open) works the same way.
func Example() {
	dir, err := os.MkdirTemp("", "ltxvfs-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.db")

	// The application's database.
	app, err := sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)")
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	if _, err := app.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER)`); err != nil {
		log.Fatal(err)
	}

	// The replicator: it syncs every SyncInterval (1s by default) in the
	// background once started; Sync copies what is committed now.
	ctx := context.Background()
	rep, err := writer.New(path, file.New(filepath.Join(dir, "replica")), writer.Options{
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := rep.Start(ctx); err != nil {
		log.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := app.Exec(`INSERT INTO orders (amount) VALUES (?)`, i*100); err != nil {
			log.Fatal(err)
		}
	}
	if err := rep.Sync(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("replicated:", rep.TXID() > 0)
	if err := rep.Close(ctx); err != nil { // a final sync, then stop
		log.Fatal(err)
	}

	// The replica restores to the same rows.
	res, err := restore.Run(ctx, file.New(filepath.Join(dir, "replica")), filepath.Join(dir, "restored.db"), restore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	restored, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "restored.db")+"?mode=ro")
	if err != nil {
		log.Fatal(err)
	}
	defer restored.Close()
	var n, sum int
	if err := restored.QueryRow(`SELECT count(*), sum(amount) FROM orders`).Scan(&n, &sum); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("restored at the newest TXID: %v; %d orders, %d in all\n", res.TXID == rep.TXID(), n, sum)
	// Output:
	// replicated: true
	// restored at the newest TXID: true; 3 orders, 600 in all
}
