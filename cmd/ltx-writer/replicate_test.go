package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/syncbuf"

	_ "github.com/ncruces/go-sqlite3/driver"
)

// syncBuffer is a buffer written by a command running in a goroutine.
type syncBuffer = syncbuf.Buffer

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func addRows(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := db.Exec(`INSERT INTO t (v) VALUES (?)`, strings.Repeat("x", i%50)); err != nil {
			t.Fatal(err)
		}
	}
}

func rowsOf(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, v FROM t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id int
		var v string
		rows.Scan(&id, &v)
		fmt.Fprintf(&b, "%d %s\n", id, v)
	}
	return b.String()
}

// runCmd runs a subcommand and returns its exit code and output.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	// A command that should have failed must not run forever.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestReplicateRestoreLs runs `replicate` until it is interrupted, with
// metrics served, then `restore` and `ls` on what it wrote.
func TestReplicateRestoreLs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	replica := filepath.Join(dir, "replica")
	db := openDB(t, path)
	addRows(t, db, 20)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"replicate", "-db", path, "-replica", replica, "-sync-interval", "10ms",
			"-compaction-intervals", "50ms,200ms", "-snapshot-interval", "1h", "-metrics-addr", "127.0.0.1:0"}, &stdout, &stderr)
	}()

	// Metrics are served on the port the log line names.
	re := regexp.MustCompile(`url=(http://[^ ]+/metrics)`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("no metrics URL logged: %s", stderr.String())
	}
	for i := 0; i < 5; i++ {
		addRows(t, db, 10)
		time.Sleep(60 * time.Millisecond)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"ltx_writer_syncs_total", "ltx_writer_sync_errors_total", "ltx_writer_sync_duration_seconds_bucket",
		"ltx_writer_wal_bytes", "ltx_writer_replica_txid", "ltx_writer_replica_lag_seconds", "ltx_writer_uploaded_bytes_total",
		`ltx_writer_checkpoints_total{db="` + path + `",mode="PASSIVE"}`, `ltx_writer_compactions_total{db="` + path + `",level="1"}`} {
		if !strings.Contains(string(body), name) {
			t.Errorf("metrics lack %s", name)
		}
	}

	// A last commit, then SIGINT: the final sync must carry it.
	addRows(t, db, 1)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("replicate exited %d after the signal: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("replicate did not stop")
	}

	out := filepath.Join(dir, "restored.db")
	code, so, se := runCmd(t, "restore", "-replica", replica, "-o", out)
	if code != 0 || !strings.Contains(so, "restored") {
		t.Fatalf("restore exited %d: %s%s", code, so, se)
	}
	if rowsOf(t, out) != rowsOf(t, path) {
		t.Fatal("restored rows differ from the source: the final sync missed the last commit")
	}
	code, _, se = runCmd(t, "restore", "-replica", replica, "-o", out)
	if code != 1 || !strings.Contains(se, "-f") || strings.Count(se, "\n") != 1 {
		t.Fatalf("restore over an existing file: exit %d, %q", code, se)
	}
	if code, _, se := runCmd(t, "restore", "-replica", replica, "-o", out, "-f", "-txid", "0000000000000001"); code != 0 {
		t.Fatalf("restore -f -txid: exit %d: %s", code, se)
	}
	if rowsOf(t, out) == rowsOf(t, path) {
		t.Fatal("restore at TXID 1 gave the newest rows")
	}

	code, so, se = runCmd(t, "ls", "-replica", replica)
	if code != 0 || !strings.Contains(so, "LEVEL") || !strings.Contains(so, "restorable TXIDs") {
		t.Fatalf("ls exited %d: %s%s", code, so, se)
	}
	for _, level := range []string{"\n0 ", "\n1 "} {
		if !strings.Contains(so, level) {
			t.Errorf("ls shows no level %q files:\n%s", strings.TrimSpace(level), so)
		}
	}
}

// TestUserErrors: every mistake exits non-zero with one line on stderr that
// names what is wrong.
func TestUserErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	openDB(t, path)
	notDB := filepath.Join(dir, "notes.txt")
	os.WriteFile(notDB, []byte(strings.Repeat("not a database ", 10)), 0o644)
	replica := filepath.Join(dir, "replica")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"replicate"}, 2, "-db and -replica are required"},
		{[]string{"replicate", "-db", path}, 2, "-db and -replica are required"},
		{[]string{"replicate", "-db", path, "-replica", "s4://bucket/x"}, 1, `"s4"`},
		{[]string{"replicate", "-db", path, "-replica", "s3://"}, 1, "bucket required"},
		{[]string{"replicate", "-db", notDB, "-replica", replica}, 1, "not a SQLite database"},
		{[]string{"replicate", "-db", filepath.Join(dir, "missing.db"), "-replica", replica}, 1, "missing.db"},
		{[]string{"replicate", "-db", path, "-replica", replica, "-sync-interval", "0s"}, 2, "-sync-interval"},
		{[]string{"replicate", "-db", path, "-replica", replica, "-compaction-intervals", "30s,fast"}, 2, `"fast"`},
		{[]string{"replicate", "-db", path, "-replica", replica, "-metrics-addr", "nope:abc"}, 1, "metrics address"},
		{[]string{"replicate", "-config", filepath.Join(dir, "none.yaml")}, 1, "none.yaml"},
		{[]string{"replicate", "-config", "x.yaml", "-db", path}, 2, "not both"},
		{[]string{"restore", "-replica", replica}, 2, "-o are required"},
		{[]string{"restore", "-replica", replica, "-o", "x.db", "-txid", "12abc"}, 2, `"12abc"`},
		{[]string{"restore", "-replica", replica, "-o", "x.db", "-time", "yesterday"}, 2, `"yesterday"`},
		{[]string{"restore", "-replica", replica, "-o", "x.db", "-txid", "1", "-time", "-5m"}, 2, "not both"},
		{[]string{"restore", "-replica", filepath.Join(dir, "empty"), "-o", filepath.Join(dir, "x.db")}, 1, "no LTX files"},
		{[]string{"ls"}, 2, "-replica is required"},
		{[]string{"ls", "-replica", "gs://bucket"}, 1, `"gs"`},
		{[]string{"ls", "-bogus"}, 2, "bogus"},
	} {
		code, _, stderr := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d naming %s", tc.args, code, stderr, tc.code, tc.want)
			continue
		}
		if tc.args[len(tc.args)-1] != "-bogus" && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: more than one line on stderr: %q", tc.args, stderr)
		}
	}
}
