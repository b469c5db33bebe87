package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/ltxvfs/ltxvfs/vfs"
)

// writerProcess is `ltx-writer replicate` running in a child process.
type writerProcess struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	base   string // http://ADDR of its metrics address
	exited chan struct{}
}

// startWriter starts `ltx-writer <args>` in a child process (this test
// binary, run as main) with -metrics-addr on a random loopback port, and
// waits until it serves.
func startWriter(t testing.TB, args ...string) *writerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], append(args, "-metrics-addr", "127.0.0.1:0")...)
	cmd.Env = append(os.Environ(), envAsMain+"=1")
	p := &writerProcess{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT) // a final sync, as at any stop
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-p.exited
		}
	})
	re := regexp.MustCompile(`url=(http://[^ /]+)/metrics`)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(p.stderr.String()); m != nil {
			p.base = m[1]
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("ltx-writer %v exited: %s", args, p.stderr.String())
		default:
		}
	}
	t.Fatalf("ltx-writer %v serves nothing after a minute: %s", args, p.stderr.String())
	return nil
}

// waitReplicating waits until the writer has opened its database and
// answers /sync (its address serves before).
func (p *writerProcess) waitReplicating(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		status, body := p.get(t, http.MethodGet, "/sync")
		if status == http.StatusOK {
			return
		}
		if status != http.StatusServiceUnavailable || !strings.Contains(body, "no database is being replicated yet") || time.Now().After(deadline) {
			t.Fatalf("GET /sync at start: %d %q", status, body)
		}
	}
}

// openReader opens the replica through the ltx VFS.
func openReader(t testing.TB, replica, params string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:app.db?vfs=ltx&"+params+"&replica="+url.QueryEscape(replica))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// get requests path on the writer's address and returns status and body.
func (p *writerProcess) get(t testing.TB, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, p.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestSyncEndpoint: an application commits, asks `ltx-writer replicate`
// (another process) for a token at /sync, and a reader of the replica
// given the token sees the row as soon as PRAGMA ltx_wait returns.
func TestSyncEndpoint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	replica := filepath.Join(dir, "replica")
	app := openDB(t, path)
	w := startWriter(t, "replicate", "-db", path, "-replica", replica, "-sync-interval", "100ms")
	w.waitReplicating(t)
	reader := openReader(t, replica, "poll=1h&wait_timeout=10s")
	c, err := reader.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	for i := range 10 {
		res, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, "row")
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		route := "/sync?db=" + url.QueryEscape(path)
		if i%2 == 1 {
			route = "/sync" // one database: db= may be left out
		}
		status, tok := w.get(t, http.MethodGet, route)
		if status != http.StatusOK || !strings.HasPrefix(tok, "ltx1:") {
			t.Fatalf("GET %s: %d %q", route, status, tok)
		}
		var seen string
		if err := c.QueryRowContext(context.Background(), `PRAGMA ltx_wait = '`+tok+`'`).Scan(&seen); err != nil {
			t.Fatalf("PRAGMA ltx_wait = '%s': %v", tok, err)
		}
		var n int
		if err := c.QueryRowContext(context.Background(), `SELECT count(*) FROM t WHERE id = ?`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("row %d, committed before token %s, not visible at TXID %s after the wait", id, tok, seen)
		}
	}

	// Bad requests: named in the answer.
	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{http.MethodGet, "/sync?db=" + url.QueryEscape(filepath.Join(dir, "other.db")), http.StatusNotFound, "other.db: this writer does not replicate it (it replicates " + path},
		{http.MethodGet, "/sync?db=a&db=b", http.StatusBadRequest, "db= given 2 times"},
		{http.MethodDelete, "/sync", http.StatusMethodNotAllowed, "method DELETE"},
	} {
		status, body := w.get(t, tc.method, tc.path)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s: %d %q, want %d saying %q", tc.method, tc.path, status, body, tc.status, tc.want)
		}
	}
	if status, _ := w.get(t, http.MethodPost, "/sync"); status != http.StatusOK {
		t.Errorf("POST /sync: %d", status)
	}
}

// BenchmarkSyncEndpoint measures, over b.N commits, how long after a commit
// returns a reader sees it when the writer is `ltx-writer replicate` in
// another process: GET /sync for the token, then PRAGMA ltx_wait. The
// writer syncs every 100 ms and the reader polls every 100 ms, on a
// local-directory replica. Run with -benchtime=300x; the figures are the
// p50 and p99 in ms of the token request, the wait and the total.
func BenchmarkSyncEndpoint(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "app.db")
	replica := filepath.Join(dir, "replica")
	app, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	if _, err := app.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		b.Fatal(err)
	}
	w := startWriter(b, "replicate", "-db", path, "-replica", replica, "-sync-interval", "100ms")
	w.waitReplicating(b)
	c, err := openReader(b, replica, "poll=100ms").Conn(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var tokens, waits, totals []time.Duration
	b.ResetTimer()
	for i := range b.N {
		if _, err := app.Exec(`INSERT INTO t (id, v) VALUES (?, 'row')`, i+1); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		status, tok := w.get(b, http.MethodGet, "/sync")
		if status != http.StatusOK {
			b.Fatalf("GET /sync: %d %s", status, tok)
		}
		got := time.Now()
		var txid int64
		if err := c.QueryRowContext(context.Background(), `PRAGMA ltx_wait = '`+tok+`'`).Scan(&txid); err != nil {
			b.Fatal(err)
		}
		seen := time.Now()
		var n int
		if err := c.QueryRowContext(context.Background(), `SELECT count(*) FROM t WHERE id = ?`, i+1).Scan(&n); err != nil || n != 1 {
			b.Fatalf("row %d not visible after PRAGMA ltx_wait = '%s': %d, %v", i+1, tok, n, err)
		}
		tokens, waits, totals = append(tokens, got.Sub(committed)), append(waits, seen.Sub(got)), append(totals, seen.Sub(committed))
	}
	b.StopTimer()
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"token", tokens}, {"wait", waits}, {"total", totals}} {
		slices.Sort(m.ds)
		for _, p := range []float64{0.50, 0.99} {
			d := m.ds[min(len(m.ds)-1, int(p*float64(len(m.ds))))]
			b.ReportMetric(float64(d)/float64(time.Millisecond), fmt.Sprintf("%s-p%02.0f-ms", m.name, p*100))
		}
	}
}
