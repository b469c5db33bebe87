package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// The benchmark database: items (rowid table, ~800-byte rows, secondary
// index on k) and customers (joined on items.customer_id).
const (
	schemaSQL = `
		CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT NOT NULL, region TEXT NOT NULL);
		CREATE TABLE items(id INTEGER PRIMARY KEY, k TEXT NOT NULL, customer_id INTEGER NOT NULL, payload TEXT NOT NULL);`
	indexSQL = `CREATE INDEX items_k ON items(k)`

	// payloadLen makes five rows fill a 4 KiB page. Half of each payload
	// is random hex, half a repeated letter: LZ4 halves it, as it does
	// typical row data.
	payloadLen = 760
	// rowBytes is what a row costs in the file: a fifth of a page, plus
	// its entry in items_k.
	rowBytes = 4096/5 + 24
	// customersPer: one customer per this many items.
	customersPer = 50
	// minSize keeps the smallest database above a few pages of each kind.
	minSize = 1 << 20
)

// payloadSQL makes a payload of payloadLen characters.
const payloadSQL = `printf('%s%.*c', hex(randomblob(190)), 380, 'x')`

// kOf is the k of the item id, as the INSERT of buildDatabase computes it,
// so that a lookup knows the key of any id: a bijection on ids below the
// prime modulus, so every k is unique and its order is not the ids'.
func kOf(id int64) string { return fmt.Sprintf("%010d", (id*2654435761)%4294967291) }

// rowsFor is how many items make a database of about size bytes.
func rowsFor(size int64) int64 { return max(size/rowBytes, 100) }

// buildDatabase creates the benchmark database at path with about size
// bytes, in one transaction of chunked INSERT ... SELECT statements with
// the journal off (nothing to recover: a failed build is removed), the
// index built once at the end.
func buildDatabase(ctx context.Context, path string, size int64, prog *progress) (rows int64, err error) {
	if _, err := os.Stat(path); err == nil {
		return 0, fmt.Errorf("build database %s: the file exists", path)
	}
	defer func() {
		if err != nil {
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				os.Remove(path + suffix)
			}
		}
	}()
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(off)&_pragma=synchronous(off)&_pragma=cache_size(-65536)&_pragma=locking_mode(exclusive)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("build database %s: %w", path, err)
	}
	defer conn.Close()

	rows = rowsFor(size)
	customers := max(rows/customersPer, 1)
	if _, err := conn.ExecContext(ctx, schemaSQL); err != nil {
		return 0, fmt.Errorf("build database %s: schema: %w", path, err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO customers(id, name, region)
		SELECT value, printf('customer-%d', value), printf('region-%02d', value % 37) FROM generate_series(1, ?)`, customers); err != nil {
		return 0, fmt.Errorf("build database %s: customers: %w", path, err)
	}
	insert, err := tx.PrepareContext(ctx, `INSERT INTO items(id, k, customer_id, payload)
		SELECT value, printf('%010d', (value * 2654435761) % 4294967291), (value % ?1) + 1, `+payloadSQL+`
		FROM generate_series(?2, ?3)`)
	if err != nil {
		return 0, err
	}
	defer insert.Close()
	const chunk = 20000
	start := time.Now()
	for lo := int64(1); lo <= rows; lo += chunk {
		hi := min(lo+chunk-1, rows)
		if _, err := insert.ExecContext(ctx, customers, lo, hi); err != nil {
			return 0, fmt.Errorf("build database %s: items %d..%d: %w", path, lo, hi, err)
		}
		prog.update("building the database: %s of %s rows (%.0f%%), %s", thousands(hi), thousands(rows), 100*float64(hi)/float64(rows), time.Since(start).Round(time.Second))
	}
	prog.update("building the database: indexing items.k")
	if _, err := tx.ExecContext(ctx, indexSQL); err != nil {
		return 0, fmt.Errorf("build database %s: index: %w", path, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("build database %s: %w", path, err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA locking_mode=normal`); err != nil {
		return 0, err
	}
	// A rollback journal, so that a database kept with -db is one file that
	// read-only opens leave alone; the writer puts its copy in WAL mode.
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode=delete`).Scan(&mode); err != nil || mode != "delete" {
		return 0, fmt.Errorf("build database %s: journal mode: %q, %v", path, mode, err)
	}
	return rows, nil
}

// checkDatabase confirms that a database taken with -db has the harness's
// schema and contiguous ids, and returns its row count.
func checkDatabase(ctx context.Context, path string) (rows int64, err error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE
		(type = 'table' AND name IN ('items', 'customers')) OR (type = 'index' AND name = 'items_k')`).Scan(&n); err != nil {
		return 0, fmt.Errorf("-db %s: not a SQLite database the harness can use: %w", path, err)
	}
	if n != 3 {
		return 0, fmt.Errorf("-db %s: lacks the harness's tables items, customers and index items_k (give -db a path that does not exist yet to build one there)", path)
	}
	var lo, hi, count int64
	if err := db.QueryRowContext(ctx, `SELECT min(id), max(id), count(*) FROM items`).Scan(&lo, &hi, &count); err != nil {
		return 0, fmt.Errorf("-db %s: %w", path, err)
	}
	if lo != 1 || hi != count {
		return 0, fmt.Errorf("-db %s: items ids are not 1..%d without gaps (min %d, max %d)", path, count, lo, hi)
	}
	var k string
	if err := db.QueryRowContext(ctx, `SELECT k FROM items WHERE id = ?`, hi).Scan(&k); err != nil || k != kOf(hi) {
		return 0, fmt.Errorf("-db %s: items.k of id %d is %q, want %q: not built by ltxvfs-bench", path, hi, k, kOf(hi))
	}
	return count, nil
}

// copyFile copies a database and its WAL, if any, to dst.
func copyFile(src, dst string) error {
	for _, suffix := range []string{"", "-wal"} {
		in, err := os.Open(src + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			return err
		}
		out, err := os.OpenFile(dst+suffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("copy %s to %s: %w", src+suffix, dst+suffix, err)
		}
	}
	return nil
}

// thousands prints n with thousands separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
