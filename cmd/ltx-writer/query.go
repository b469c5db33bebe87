package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"time"

	sqlite3driver "github.com/ncruces/go-sqlite3/driver"

	"github.com/ltxvfs/ltxvfs/internal/pointintime"
	_ "github.com/ltxvfs/ltxvfs/vfs"
)

// runQuery runs one SQL statement against a replica through the ltx VFS,
// at the latest TXID or pinned at one, and prints its rows.
func runQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("query", "-replica URL [-txid N | -time T] [-format table|csv|json] [-stats] 'SQL'", stderr)
	replica := fs.String("replica", "", "replica URL: a directory, file:///abs/dir or s3://bucket/prefix (required)")
	txid := fs.String("txid", "", "read at this TXID: decimal, or 16 hex digits as in file names")
	at := fs.String("time", "", "read at the newest TXID committed at or before this time: RFC 3339, or relative like -5m")
	format := fs.String("format", "table", "output format: table, csv or json")
	stats := fs.Bool("stats", false, "print what the query cost (storage requests, bytes, round trips, cache hits and misses) to stderr, under the rows")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 1:
		return usagef("want one SQL statement after the flags, got %d arguments (quote the SQL)", fs.NArg())
	case *replica == "":
		return usagef("-replica is required")
	case *txid != "" && *at != "":
		return usagef("give -txid or -time, not both")
	case *format != "table" && *format != "csv" && *format != "json":
		return usagef("-format %q: want table, csv or json", *format)
	}
	q := url.Values{"vfs": {"ltx"}, "replica": {*replica}}
	if *txid != "" {
		if _, err := pointintime.ParseTXID(*txid); err != nil {
			return usagef("-txid: %v", err)
		}
		q.Set("txid", *txid)
	}
	if *at != "" {
		if _, err := pointintime.ParseTime(*at, time.Now()); err != nil {
			return usagef("-time: %v", err)
		}
		q.Set("time", *at)
	}

	db, err := sql.Open("sqlite3", "file:replica.db?"+q.Encode())
	if err != nil {
		return err
	}
	defer db.Close()
	cols, rows, cost, err := queryAll(ctx, db, fs.Arg(0), *stats)
	if err != nil {
		return err
	}
	switch *format {
	case "csv":
		err = writeCSV(stdout, cols, rows)
	case "json":
		err = writeJSON(stdout, cols, rows)
	default:
		err = writeTable(stdout, cols, rows)
	}
	if err == nil && *stats {
		// stderr, so that stdout stays the rows alone in every format.
		_, err = fmt.Fprintf(stderr, "cost: %s\n", cost)
	}
	return err
}

// queryAll runs query and returns its column names and every row, each
// value as SQLite holds it: int64, float64, string (TEXT), []byte (BLOB) or
// nil (NULL), and, if stats, what it cost: PRAGMA ltx_stats, read on the
// same connection once the statement is done.
//
// It steps the statement through the driver's *sqlite3.Conn rather than
// database/sql's Rows: the driver converts values by declared column type
// (DATETIME, DATE, TIME, TIMESTAMP to time.Time, BOOLEAN 0/1 to bool, and
// RFC 3339-looking text in untyped columns to time.Time), and no DSN
// option turns that off. Stmt.Columns does no such conversion.
func queryAll(ctx context.Context, db *sql.DB, query string, stats bool) (cols []string, rows [][]any, cost string, err error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		conn := dc.(sqlite3driver.Conn).Raw()
		// The VFS reads with the connection's interrupt context, and
		// SQLite stops when it is done.
		old := conn.SetInterrupt(ctx)
		defer conn.SetInterrupt(old)
		stmt, tail, err := conn.Prepare(query)
		if err != nil {
			return err
		}
		if stmt == nil { // empty SQL, or only a comment
			return usagef("no SQL statement in %q", query)
		}
		defer stmt.Close()
		if more, _, err := conn.Prepare(tail); more != nil || err != nil {
			if more != nil {
				more.Close()
			}
			return usagef("more than one SQL statement in %q: give one", query)
		}
		cols = make([]string, stmt.ColumnCount())
		for i := range cols {
			cols[i] = stmt.ColumnName(i)
		}
		for stmt.Step() {
			row := make([]any, len(cols))
			if err := stmt.Columns(row...); err != nil {
				return err
			}
			rows = append(rows, row)
		}
		return stmt.Err()
	})
	if err != nil {
		return nil, nil, "", err
	}
	if stats {
		if err := c.QueryRowContext(ctx, `PRAGMA ltx_stats`).Scan(&cost); err != nil {
			return nil, nil, "", fmt.Errorf("read the query's cost (PRAGMA ltx_stats): %w", err)
		}
	}
	return cols, rows, cost, nil
}
