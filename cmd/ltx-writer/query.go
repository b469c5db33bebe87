package main

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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

// queryAll runs query and returns its columns and every row and, if
// stats, what it cost: PRAGMA ltx_stats, read on the same connection once
// its rows are closed.
func queryAll(ctx context.Context, db *sql.DB, query string, stats bool) (cols []string, rows [][]any, cost string, err error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	defer c.Close()
	// SQL without a statement (empty, or only a comment) makes the driver's
	// QueryContext dereference a nil statement: refuse it first.
	if err := c.Raw(func(dc any) error {
		stmt, _, err := dc.(sqlite3driver.Conn).Raw().Prepare(query)
		if stmt == nil && err == nil {
			return usagef("no SQL statement in %q", query)
		}
		if stmt != nil {
			stmt.Close()
		}
		return nil // a compile error is QueryContext's to report
	}); err != nil {
		return nil, nil, "", err
	}
	if cols, rows, err = readRows(ctx, c, query); err != nil {
		return nil, nil, "", err
	}
	if stats {
		if err := c.QueryRowContext(ctx, `PRAGMA ltx_stats`).Scan(&cost); err != nil {
			return nil, nil, "", fmt.Errorf("read the query's cost (PRAGMA ltx_stats): %w", err)
		}
	}
	return cols, rows, cost, nil
}

// readRows runs query on c and returns its columns and every row, its
// rows closed.
func readRows(ctx context.Context, c *sql.Conn, query string) ([]string, [][]any, error) {
	rs, err := c.QueryContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return nil, nil, err
	}
	var rows [][]any
	for rs.Next() {
		row := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		rows = append(rows, row)
	}
	if err := rs.Err(); err != nil {
		return nil, nil, err
	}
	return cols, rows, rs.Close()
}

// text renders a value for the table and CSV formats; null is how NULL
// shows.
func text(v any, null string) string {
	switch v := v.(type) {
	case nil:
		return null
	case []byte:
		if utf8.Valid(v) {
			return string(v)
		}
		return fmt.Sprintf("x'%x'", v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(v)
	}
}

func writeTable(w io.Writer, cols []string, rows [][]any) error {
	cells := make([][]string, len(rows))
	widths := make([]int, len(cols))
	numeric := make([]bool, len(cols))
	for i, c := range cols {
		widths[i] = utf8.RuneCountInString(c)
		numeric[i] = len(rows) > 0
	}
	for r, row := range rows {
		cells[r] = make([]string, len(cols))
		for i, v := range row {
			s := strings.NewReplacer("\n", `\n`, "\t", `\t`).Replace(text(v, "NULL"))
			cells[r][i] = s
			widths[i] = max(widths[i], utf8.RuneCountInString(s))
			switch v.(type) {
			case int64, float64, nil:
			default:
				numeric[i] = false
			}
		}
	}
	var b strings.Builder
	line := func(vals []string, pad func(i int) string) {
		for i, s := range vals {
			if i > 0 {
				b.WriteString("  ")
			}
			fill := strings.Repeat(pad(i), widths[i]-utf8.RuneCountInString(s))
			if numeric[i] {
				b.WriteString(fill + s)
			} else if i < len(vals)-1 {
				b.WriteString(s + fill)
			} else {
				b.WriteString(s)
			}
		}
		b.WriteString("\n")
	}
	line(cols, func(int) string { return " " })
	dashes := make([]string, len(cols))
	for i := range dashes {
		dashes[i] = strings.Repeat("-", widths[i])
	}
	line(dashes, func(int) string { return "-" })
	for _, row := range cells {
		line(row, func(int) string { return " " })
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeCSV(w io.Writer, cols []string, rows [][]any) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(cols); err != nil {
		return err
	}
	rec := make([]string, len(cols))
	for _, row := range rows {
		for i, v := range row {
			rec[i] = text(v, "")
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeJSON writes an array of objects whose keys keep the column order.
func writeJSON(w io.Writer, cols []string, rows [][]any) error {
	var b strings.Builder
	b.WriteString("[")
	for r, row := range rows {
		if r > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  {")
		for i, v := range row {
			if i > 0 {
				b.WriteString(", ")
			}
			k, _ := json.Marshal(cols[i])
			b.Write(k)
			b.WriteString(": ")
			switch x := v.(type) {
			case []byte:
				if utf8.Valid(x) {
					v = string(x) // text read as bytes; a true blob stays base64
				}
			case float64:
				if math.IsInf(x, 0) || math.IsNaN(x) {
					v = text(x, "") // JSON has no infinities
				}
			}
			j, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("encode column %s of row %d: %w", cols[i], r+1, err)
			}
			b.Write(j)
		}
		b.WriteString("}")
	}
	if len(rows) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	_, err := io.WriteString(w, b.String())
	return err
}
