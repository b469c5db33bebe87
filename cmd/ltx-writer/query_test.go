package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
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
