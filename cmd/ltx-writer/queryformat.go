package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The three output formats of `ltx-writer query`. Each prints the value
// SQLite holds, never one converted by declared column type, and keeps
// SQLite's storage classes apart as far as the format can (README,
// "ltx-writer query"):
//
//	         table          csv                  json
//	NULL     NULL           (empty field)        null
//	INTEGER  1              1                    1
//	REAL     1.0            1.0                  1.0
//	TEXT     hello          hello, "" if empty   "hello"
//	BLOB     X'68656c6c6f'  X'68656c6c6f'        {"$base64": true, "encoded": "aGVsbG8="}

// cell renders a value for the table and CSV formats; null is how NULL
// shows.
func cell(v any, null string) string {
	switch v := v.(type) {
	case nil:
		return null
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return formatReal(v)
	case string:
		return v
	case []byte:
		// A BLOB as the SQL literal sqlite3's -quote mode prints: never
		// its bytes, which may be valid UTF-8 and then read as TEXT.
		return "X'" + hex.EncodeToString(v) + "'"
	default:
		return fmt.Sprint(v) // not reached: queryAll returns the five above
	}
}

// formatReal renders a REAL with the fewest digits that read back as the
// same float64, and always as a REAL: 1.0 stays 1.0, not 1, and 1e20 is
// 1.0e+20, as SQLite itself writes them. The exponent form starts where
// SQLite's (%!.15g) does; SQLite's 15 digits would round 0.1+0.2 to 0.3.
func formatReal(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Inf" // as sqlite3 -csv prints it
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN" // SQLite returns NULL for NaN; kept for completeness
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	if x, _ := strconv.Atoi(exp); x < -4 || x >= 15 {
		if !strings.Contains(mant, ".") {
			mant += ".0"
		}
		return mant + "e" + exp
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
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
			s := strings.NewReplacer("\n", `\n`, "\t", `\t`).Replace(cell(v, "NULL"))
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

// writeCSV writes RFC 4180 CSV quoted as sqlite3 -csv quotes it, so
// that quotes tell the storage classes apart where a reader keeps them: a
// NULL is an empty field and empty TEXT a quoted one (""), which
// encoding/csv cannot write; a BLOB is its literal X'..' unquoted, while
// TEXT spelling one is quoted for its apostrophes.
func writeCSV(w io.Writer, cols []string, rows [][]any) error {
	var b strings.Builder
	record := func(n int, field func(i int) (s string, bare bool)) {
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			if s, bare := field(i); !bare && csvNeedsQuotes(s) {
				b.WriteString(`"` + strings.ReplaceAll(s, `"`, `""`) + `"`)
			} else {
				b.WriteString(s)
			}
		}
		b.WriteByte('\n')
	}
	record(len(cols), func(i int) (string, bool) { return cols[i], false })
	for _, row := range rows {
		record(len(row), func(i int) (string, bool) {
			switch row[i].(type) {
			case nil, []byte:
				return cell(row[i], ""), true
			}
			return cell(row[i], ""), false
		})
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// csvNeedsQuotes is sqlite3 -csv's rule: quote an empty field and any
// with a comma, a quote, an apostrophe, a space, a control character or a
// byte outside ASCII.
func csvNeedsQuotes(s string) bool {
	if s == "" {
		return true
	}
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c == '"' || c == '\'' || c == ',' || c >= 0x7f {
			return true
		}
	}
	return false
}

// writeJSON writes an array of objects whose keys keep the column order
// and never repeat (jsonKeys).
func writeJSON(w io.Writer, cols []string, rows [][]any) error {
	keys := jsonKeys(cols)
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
			b.Write(jsonString(keys[i]))
			b.WriteString(": ")
			b.WriteString(jsonValue(v))
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

// jsonValue renders a value as JSON of its own kind: a REAL keeps its
// point (1.0), a BLOB is the object sqlite-utils and Datasette use, which
// no TEXT can be mistaken for.
func jsonValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case float64:
		switch {
		case math.IsNaN(x):
			return "null"
		case math.IsInf(x, 1):
			return "1e999" // as sqlite3 -json prints it: a number that overflows to infinity
		case math.IsInf(x, -1):
			return "-1e999"
		}
	case string:
		return string(jsonString(x))
	case []byte:
		return `{"$base64": true, "encoded": "` + base64.StdEncoding.EncodeToString(x) + `"}`
	}
	return cell(v, "null")
}

func jsonString(s string) []byte {
	j, _ := json.Marshal(s) // a string always encodes
	return j
}

// jsonKeys are the column names as JSON object keys. A name an earlier
// column already has gets the suffix SQLite gives it in CREATE TABLE ...
// AS SELECT (":1", ":2", ...), skipping names other columns have: JSON
// readers keep only one of two equal keys, so a repeated key would lose a
// column. Keys compare case-sensitively, as JSON's do.
func jsonKeys(cols []string) []string {
	taken := make(map[string]bool, len(cols))
	for _, c := range cols {
		taken[c] = true
	}
	seen := make(map[string]bool, len(cols))
	keys := make([]string, len(cols))
	for i, c := range cols {
		k := c
		for n := 1; seen[c] && taken[k]; n++ {
			k = c + ":" + strconv.Itoa(n)
		}
		seen[c], taken[k] = true, true
		keys[i] = k
	}
	return keys
}
