package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"log/slog"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/fixture"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/vfs"
	"github.com/ltxvfs/ltxvfs/writer"
)

// queryCLI runs `ltx-writer query args...` and returns its exit code and
// output.
func queryCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"query"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func queryFixture(t *testing.T) (string, *fixture.Manifest) {
	t.Helper()
	dir := t.TempDir()
	m, err := fixture.Copy(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func TestQueryFormats(t *testing.T) {
	dir, m := queryFixture(t)
	latest := m.Latest()
	const sql = `SELECT count(*) AS n, min(name) AS lo, NULL AS empty FROM t`

	code, out, errs := queryCLI(t, "-replica", dir, sql)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "--") {
		t.Fatalf("table output:\n%s", out)
	}
	if f := strings.Fields(lines[2]); len(f) != 3 || f[0] != strconv.FormatInt(latest.Rows, 10) || f[1] != latest.MinName || f[2] != "NULL" {
		t.Fatalf("table row %q, want %d %s NULL", lines[2], latest.Rows, latest.MinName)
	}
	if strings.Index(lines[0], "lo") != strings.Index(lines[2], latest.MinName) {
		t.Fatalf("columns not aligned:\n%s", out)
	}

	// A comment after the statement is not a second statement.
	if code, out, errs := queryCLI(t, "-replica", dir, "-format", "csv", "SELECT 1 AS one; -- the end"); code != 0 || out != "one\n1\n" {
		t.Fatalf("statement and a comment: exit %d, %q, %s", code, out, errs)
	}

	code, out, errs = queryCLI(t, "-replica", dir, "-format", "csv", sql)
	if code != 0 {
		t.Fatalf("csv: exit %d: %s", code, errs)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 2 || strings.Join(recs[0], ",") != "n,lo,empty" || recs[1][0] != strconv.FormatInt(latest.Rows, 10) || recs[1][2] != "" {
		t.Fatalf("csv output %q, %v", out, err)
	}

	code, out, errs = queryCLI(t, "-replica", "file://"+dir, "-format", "json", sql)
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, errs)
	}
	var objs []map[string]any
	if err := json.Unmarshal([]byte(out), &objs); err != nil || len(objs) != 1 {
		t.Fatalf("json output %q: %v", out, err)
	}
	if objs[0]["n"] != float64(latest.Rows) || objs[0]["lo"] != latest.MinName || objs[0]["empty"] != nil {
		t.Fatalf("json row %v", objs[0])
	}
	if !strings.HasPrefix(strings.TrimSpace(out), `[`) || strings.Index(out, `"n"`) > strings.Index(out, `"lo"`) {
		t.Fatalf("json keys out of column order: %s", out)
	}
}

// -txid and -time read the past, exactly as the manifest recorded it.
func TestQueryPointInTime(t *testing.T) {
	dir, m := queryFixture(t)
	for _, st := range []fixture.State{m.States[0], m.States[4], m.States[len(m.States)-2]} {
		for _, pin := range [][]string{{"-txid", strconv.FormatUint(uint64(st.TXID), 10)}, {"-txid", st.TXID.String()}, {"-time", st.Timestamp}} {
			args := append(append([]string{"-replica", dir, "-format", "csv"}, pin...), m.Query)
			code, out, errs := queryCLI(t, args...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s", pin, code, errs)
			}
			recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil || len(recs) != 2 {
				t.Fatalf("%v: %q, %v", pin, out, err)
			}
			rows, _ := strconv.ParseInt(recs[1][0], 10, 64)
			sumN, _ := strconv.ParseInt(recs[1][1], 10, 64)
			if err := st.CheckQuery(rows, sumN, recs[1][2]); err != nil {
				t.Errorf("%v: %v", pin, err)
			}
		}
	}
}

// Every mistake is one line on stderr and a non-zero exit.
func TestQueryErrors(t *testing.T) {
	dir, _ := queryFixture(t)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"SELECT 1"}, 2, "-replica is required"},
		{[]string{"-replica", dir}, 2, "want one SQL statement"},
		{[]string{"-replica", dir, "SELECT 1", "extra"}, 2, "got 2 arguments"},
		{[]string{"-replica", dir, "-txid", "abc", "SELECT 1"}, 2, `txid "abc"`},
		{[]string{"-replica", dir, "-time", "yesterday", "SELECT 1"}, 2, `time "yesterday"`},
		{[]string{"-replica", dir, "-txid", "1", "-time", "-5m", "SELECT 1"}, 2, "not both"},
		{[]string{"-replica", dir, "-format", "xml", "SELECT 1"}, 2, `-format "xml"`},
		{[]string{"-replica", dir, "-bogus", "SELECT 1"}, 2, "bogus"},
		{[]string{"-replica", dir, "-txid", "999", "SELECT 1"}, 1, "beyond the latest"},
		{[]string{"-replica", dir, "SELECT * FROM nope"}, 1, "no such table: nope"},
		{[]string{"-replica", dir, "DELETE FROM t"}, 1, "readonly"},
		{[]string{"-replica", dir, "SELECT 1; SELECT 2"}, 2, "more than one SQL statement"},
		{[]string{"-replica", dir, "SELECT 1; SELECT * FROM nope"}, 2, "more than one SQL statement"},
		{[]string{"-replica", t.TempDir(), "SELECT 1"}, 1, "no LTX files"},
		{[]string{"-replica", "ftp://x/y", "SELECT 1"}, 1, `unknown scheme "ftp"`},
	} {
		code, out, errs := queryCLI(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and an error saying %q", tt.args, code, out, errs, tt.code, tt.want)
		}
		if tt.code == 1 && strings.Count(strings.TrimRight(errs, "\n"), "\n") != 0 {
			t.Errorf("%v: stderr is not one line: %q", tt.args, errs)
		}
		if !strings.HasPrefix(errs, "ltx-writer query: ") && !strings.Contains(errs, "flag provided but not defined") {
			t.Errorf("%v: stderr %q does not start with the command", tt.args, errs)
		}
	}
}

// replicaOf runs script on a new WAL database, replicates it once with the
// writer into a directory and returns that directory.
func replicaOf(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	path, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(script); err != nil {
		t.Fatal(err)
	}
	w, err := writer.New(path, file.New(replica), writer.Options{SyncInterval: -1, SnapshotInterval: -1, CheckpointInterval: -1,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return replica
}

// queryOut runs the query CLI in one format and returns what it printed.
func queryOut(t *testing.T, replica, format, query string) string {
	t.Helper()
	code, out, errs := queryCLI(t, "-replica", replica, "-format", format, query)
	if code != 0 {
		t.Fatalf("-format %s %q: exit %d: %s", format, query, code, errs)
	}
	return out
}

// wantOutputs checks the query's output in each format against want.
func wantOutputs(t *testing.T, replica, query string, want map[string]string) {
	t.Helper()
	for _, format := range []string{"table", "csv", "json"} {
		if got := queryOut(t, replica, format, query); got != want[format] {
			t.Errorf("-format %s %q printed\n%s\nwant\n%s", format, query, got, want[format])
		}
	}
}

// Columns declared DATETIME, DATE, TIME, TIMESTAMP or BOOLEAN print what is
// stored, as sqlite3 does (its -csv -header output is the CSV wanted here,
// byte for byte), not the driver's time.Time and bool.
func TestQueryPrintsStoredValuesOfDeclaredTypes(t *testing.T) {
	replica := replicaOf(t, `
		CREATE TABLE ev (id INTEGER PRIMARY KEY, at DATETIME, day DATE, t TIME, ts TIMESTAMP, ok BOOLEAN);
		INSERT INTO ev VALUES (1, 1700000000, 2460000.5, '03:04:05', '2024-01-02 03:04:05', 1);
		INSERT INTO ev VALUES (2, '2024-01-02T03:04:05Z', '2024-01-02', 0.5, 1700000000.5, 0);
		INSERT INTO ev VALUES (3, NULL, 'soon', 45296, '', 2);`)
	wantOutputs(t, replica, `SELECT * FROM ev ORDER BY id`, map[string]string{
		"table": `id  at                    day         t         ts                   ok
--  --------------------  ----------  --------  -------------------  --
 1  1700000000            2460000.5   03:04:05  2024-01-02 03:04:05   1
 2  2024-01-02T03:04:05Z  2024-01-02  0.5       1700000000.5          0
 3  NULL                  soon        45296                           2
`,
		"csv": `id,at,day,t,ts,ok
1,1700000000,2460000.5,03:04:05,"2024-01-02 03:04:05",1
2,2024-01-02T03:04:05Z,2024-01-02,0.5,1700000000.5,0
3,,soon,45296,"",2
`,
		"json": `[
  {"id": 1, "at": 1700000000, "day": 2460000.5, "t": "03:04:05", "ts": "2024-01-02 03:04:05", "ok": 1},
  {"id": 2, "at": "2024-01-02T03:04:05Z", "day": "2024-01-02", "t": 0.5, "ts": 1700000000.5, "ok": 0},
  {"id": 3, "at": null, "day": "soon", "t": 45296, "ts": "", "ok": 2}
]
`,
	})
}

// Every storage class prints as its own kind: a REAL with its point (1.0
// is not the INTEGER 1) and every digit it has, a BLOB never as its bytes,
// even when they are valid UTF-8. In CSV and JSON, NULL, empty TEXT, the
// text 'NULL', a BLOB and TEXT spelling a BLOB literal all differ; the
// table, for people, shows the last two alike.
func TestQueryKeepsStorageClassesApart(t *testing.T) {
	replica := replicaOf(t, `
		CREATE TABLE k (id INTEGER PRIMARY KEY, v);
		INSERT INTO k (v) VALUES (NULL), (1), (1.0), (100.0), (1e15), (1e20), (1e-7), (0.1+0.2),
			(9223372036854775807), (9e999), (-9e999), (''), ('hello'), (x''), (x'68656c6c6f'), (x'00ff'),
			('a,"b"'), (' x'), ('NULL'), ('X''00ff''');`)
	wantOutputs(t, replica, `SELECT id, typeof(v) AS type, v FROM k ORDER BY id`, map[string]string{
		"table": `id  type     v
--  -------  -------------------
 1  null     NULL
 2  integer  1
 3  real     1.0
 4  real     100.0
 5  real     1.0e+15
 6  real     1.0e+20
 7  real     1.0e-07
 8  real     0.30000000000000004
 9  integer  9223372036854775807
10  real     Inf
11  real     -Inf
12  text     
13  text     hello
14  blob     X''
15  blob     X'68656c6c6f'
16  blob     X'00ff'
17  text     a,"b"
18  text      x
19  text     NULL
20  text     X'00ff'
`,
		"csv": `id,type,v
1,null,
2,integer,1
3,real,1.0
4,real,100.0
5,real,1.0e+15
6,real,1.0e+20
7,real,1.0e-07
8,real,0.30000000000000004
9,integer,9223372036854775807
10,real,Inf
11,real,-Inf
12,text,""
13,text,hello
14,blob,X''
15,blob,X'68656c6c6f'
16,blob,X'00ff'
17,text,"a,""b"""
18,text," x"
19,text,NULL
20,text,"X'00ff'"
`,
		"json": `[
  {"id": 1, "type": "null", "v": null},
  {"id": 2, "type": "integer", "v": 1},
  {"id": 3, "type": "real", "v": 1.0},
  {"id": 4, "type": "real", "v": 100.0},
  {"id": 5, "type": "real", "v": 1.0e+15},
  {"id": 6, "type": "real", "v": 1.0e+20},
  {"id": 7, "type": "real", "v": 1.0e-07},
  {"id": 8, "type": "real", "v": 0.30000000000000004},
  {"id": 9, "type": "integer", "v": 9223372036854775807},
  {"id": 10, "type": "real", "v": 1e999},
  {"id": 11, "type": "real", "v": -1e999},
  {"id": 12, "type": "text", "v": ""},
  {"id": 13, "type": "text", "v": "hello"},
  {"id": 14, "type": "blob", "v": {"$base64": true, "encoded": ""}},
  {"id": 15, "type": "blob", "v": {"$base64": true, "encoded": "aGVsbG8="}},
  {"id": 16, "type": "blob", "v": {"$base64": true, "encoded": "AP8="}},
  {"id": 17, "type": "text", "v": "a,\"b\""},
  {"id": 18, "type": "text", "v": " x"},
  {"id": 19, "type": "text", "v": "NULL"},
  {"id": 20, "type": "text", "v": "X'00ff'"}
]
`,
	})
}

// Columns with the same name keep their names in the table and CSV (as in
// sqlite3), and get distinct JSON keys: a JSON reader keeps one of two
// equal keys, so a repeated key would drop a column's value.
func TestQueryJSONKeysNeverRepeat(t *testing.T) {
	replica := replicaOf(t, `CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT);
		INSERT INTO p VALUES (1, 'ann'), (2, 'bob');`)
	const join = `SELECT a.id, a.name, b.id, b.name FROM p a JOIN p b ON b.id = a.id + 1`
	if got, want := queryOut(t, replica, "csv", join), "id,name,id,name\n1,ann,2,bob\n"; got != want {
		t.Errorf("csv %q, want %q", got, want)
	}
	if got, want := queryOut(t, replica, "json", join), "[\n  {\"id\": 1, \"name\": \"ann\", \"id:1\": 2, \"name:1\": \"bob\"}\n]\n"; got != want {
		t.Errorf("json %q, want %q", got, want)
	}

	// A suffixed key skips a name another column has; case differs in JSON.
	out := queryOut(t, replica, "json", `SELECT 1 AS a, 2 AS a, 3 AS A, 4 AS "a:1", 5 AS a`)
	var objs []map[string]int
	if err := json.Unmarshal([]byte(out), &objs); err != nil || len(objs) != 1 {
		t.Fatalf("json %q: %v", out, err)
	}
	if want := map[string]int{"a": 1, "a:2": 2, "A": 3, "a:1": 4, "a:3": 5}; !maps.Equal(objs[0], want) {
		t.Errorf("json %s, want the keys and values of %v", out, want)
	}
}

// -stats prints the query's cost to stderr, under the rows: stdout stays
// the rows alone, byte for byte, in every format. The replica is large
// enough that the page a point lookup reads does not come with the open.
func TestQueryStats(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	db := openDB(t, path)
	if _, err := db.Exec(`INSERT INTO t(id, v) SELECT value, hex(randomblob(250)) FROM generate_series(1, 3000)`); err != nil {
		t.Fatal(err)
	}
	replica := filepath.Join(dir, "replica")
	w, err := writer.New(path, file.New(replica), writer.Options{SyncInterval: -1, SnapshotInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	const query = `SELECT id, length(v) AS n FROM t WHERE id = 2500`
	for _, format := range []string{"table", "csv", "json"} {
		_, plain, _ := queryCLI(t, "-replica", replica, "-format", format, query)
		code, out, errs := queryCLI(t, "-replica", replica, "-format", format, "-stats", query)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", format, code, errs)
		}
		if out != plain || !strings.Contains(out, "500") {
			t.Fatalf("%s: stdout with -stats:\n%s\nwithout:\n%s", format, out, plain)
		}
		line, ok := strings.CutPrefix(strings.TrimSuffix(errs, "\n"), "cost: ")
		if !ok || strings.Contains(line, "\n") {
			t.Fatalf("%s: stderr %q, want one line starting with cost: ", format, errs)
		}
		s, err := vfs.ParseStats(line)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if s.Requests == 0 || s.Bytes == 0 || s.RoundTrips == 0 || s.CacheMisses == 0 {
			t.Fatalf("%s: cost %q of a cold point lookup, want a request and a round trip", format, line)
		}
	}
}
