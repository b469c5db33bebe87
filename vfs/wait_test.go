package vfs

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/token"
	filereplica "github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// liveWriter is an application database replicated by a writer running
// in the background, as an application embeds it.
type liveWriter struct {
	t   testing.TB
	app *sql.DB
	rep *writer.Replicator
	dir string // the replica
}

func newLiveWriter(t testing.TB, syncInterval time.Duration) *liveWriter {
	t.Helper()
	base := t.TempDir()
	path := filepath.Join(base, "primary.db")
	app, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	if _, err := app.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	w := &liveWriter{t: t, app: app, dir: filepath.Join(base, "replica")}
	w.rep, err = writer.New(path, filereplica.New(w.dir), writer.Options{SyncInterval: syncInterval, SnapshotInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.rep.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.rep.Close(context.Background()) })
	w.token() // the replica exists before a reader opens it
	return w
}

// insert commits one row on the primary.
func (w *liveWriter) insert(id int) {
	w.t.Helper()
	if _, err := w.app.Exec(`INSERT INTO t(id, v) VALUES (?, 'row')`, id); err != nil {
		w.t.Fatal(err)
	}
}

func (w *liveWriter) token() string {
	w.t.Helper()
	s, err := w.rep.SyncToken(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

func (w *liveWriter) dsn(extra ...string) string {
	return "file:app.db?" + strings.Join(append([]string{"vfs=ltx", "replica=" + url.QueryEscape(w.dir)}, extra...), "&")
}

func (w *liveWriter) key() string { return "url:file://" + w.dir }

func hasRow(tb testing.TB, q querier, id int) bool {
	tb.Helper()
	return ints(tb, q, `SELECT count(*) FROM t WHERE id = ?`, id)[0] == 1
}

func txidOf(t *testing.T, s string) ltx.TXID {
	t.Helper()
	tok, err := token.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return tok.TXID
}

// TestWaitPragma: a row committed on the primary is seen by a reader given
// the writer's token, as soon as PRAGMA ltx_wait returns; without it, a
// reader polling once an hour does not see it.
func TestWaitPragma(t *testing.T) {
	w := newLiveWriter(t, 20*time.Millisecond)
	c := conn(t, openDB(t, w.dsn("poll=1h")))
	other := conn(t, openDB(t, w.dsn("poll=1h")))

	for id := 1; id <= 20; id++ {
		w.insert(id)
		tok := w.token()
		if id == 1 && hasRow(t, other, id) {
			t.Fatal("a reader polling hourly saw a new row without waiting: this test proves nothing")
		}
		got := one[string](t, c, `PRAGMA ltx_wait = '`+tok+`'`)
		if n, err := strconv.ParseUint(got, 10, 64); err != nil || ltx.TXID(n) < txidOf(t, tok) {
			t.Fatalf("PRAGMA ltx_wait = '%s' returned %q, want a TXID at or past the token's", tok, got)
		}
		if !hasRow(t, c, id) {
			t.Fatalf("row %d committed before token %s is not visible after PRAGMA ltx_wait", id, tok)
		}
		// The process's other following connections see it too: they
		// share the replica's latest version.
		if !hasRow(t, other, id) {
			t.Fatalf("row %d not visible on another following connection after the wait", id)
		}
	}
	// A token already reached returns at once with the TXID seen.
	old := w.token()
	w.insert(100)
	if got := one[string](t, c, `PRAGMA ltx_wait = '`+old+`'`); got == "" {
		t.Fatal("PRAGMA ltx_wait returned an empty string")
	}
}

// TestWaitDSN: wait= in the DSN makes the open wait for the token.
func TestWaitDSN(t *testing.T) {
	w := newLiveWriter(t, 20*time.Millisecond)
	first := openDB(t, w.dsn("poll=1h"))
	keep := conn(t, first) // keeps the replica (and its stale latest version) open
	if ints(t, keep, `SELECT count(*) FROM t`)[0] != 0 {
		t.Fatal("rows before any insert")
	}
	w.insert(7)
	tok := w.token()
	if hasRow(t, keep, 7) {
		t.Fatal("a reader polling hourly saw a new row without waiting: this test proves nothing")
	}
	db := openDB(t, w.dsn("poll=1h", "wait="+url.QueryEscape(tok), "wait_timeout=5s"))
	if !hasRow(t, db, 7) {
		t.Fatalf("row committed before token %s not visible on a connection opened with wait=", tok)
	}
}

// TestWaitBadTokens: garbage, a token of another replica, one never
// reached, and one newer than a pinned connection: clear errors naming
// the input, never a silent read of a version without the commit.
func TestWaitBadTokens(t *testing.T) {
	w := newLiveWriter(t, 20*time.Millisecond)
	w.insert(1)
	tok := w.token()
	good, err := token.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, w.dsn("poll=1h", "wait_timeout=300ms"))
	c := conn(t, db)
	one[string](t, c, `PRAGMA ltx_wait = '`+tok+`'`)

	foreign := token.New(good.TXID, good.Time.Add(time.Second)).String()
	future := token.New(good.TXID+1000, good.Time).String()
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{"garbage", []string{"ltx_wait=garbage", "not a token"}},
		{"ltx9:0000000000000001:1", []string{"format ltx9 is not known"}},
		{"ltx1:0000000000000001", []string{"not 3 fields"}},
		{"s3://AKIAKEY:hunter2@bucket/app", []string{"ltx_wait=s3://xxxxx@bucket/app", "not a token"}},
		{foreign, []string{"ltx_wait=" + foreign, "not from this replica", "TXID " + strconv.Itoa(int(good.TXID)) + " was committed at"}},
		{future, []string{"ltx_wait=" + future, "TXID " + strconv.Itoa(int(good.TXID)+1000) + " not visible after 300ms", "replica is at TXID " + strconv.Itoa(int(good.TXID))}},
	} {
		_, err := c.ExecContext(context.Background(), `PRAGMA ltx_wait = '`+tc.value+`'`)
		if err == nil {
			t.Errorf("PRAGMA ltx_wait = '%s' succeeded", tc.value)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("PRAGMA ltx_wait = '%s': error %q does not say %q", tc.value, err, want)
			}
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("PRAGMA ltx_wait = '%s': error %q shows the password", tc.value, err)
		}
	}
	if _, err := c.ExecContext(context.Background(), `PRAGMA ltx_wait`); err == nil || !strings.Contains(err.Error(), "give a read-your-writes token") {
		t.Errorf("PRAGMA ltx_wait without a value: %v", err)
	}
	// The connection stays usable.
	if !hasRow(t, c, 1) {
		t.Fatal("row 1 not visible after the bad tokens")
	}

	// The same in the DSN: the open fails naming wait=.
	for _, tc := range []struct{ params, want string }{
		{"wait=garbage", "wait=garbage: invalid read-your-writes token"},
		{"wait=" + url.QueryEscape("s3://AKIAKEY:hunter2@bucket/app"), "wait=s3://xxxxx@bucket/app"},
		{"wait=" + url.QueryEscape(foreign), "not from this replica"},
		{"wait=" + url.QueryEscape(future) + "&wait_timeout=200ms", "not visible after 200ms"},
		{"wait_timeout=soon", "wait_timeout=soon: want a positive duration"},
		{"wait_timeout=-1s", "wait_timeout=-1s: want a positive duration"},
		{"wiat=" + url.QueryEscape(tok), "did you mean wait="},
	} {
		_, err := strs(openDB(t, w.dsn("poll=1h", tc.params)), `SELECT v FROM t`)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DSN with %s: error %v, want one saying %q", tc.params, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("DSN with %s: error %q shows the password", tc.params, err)
		}
	}
}

// TestWaitQueryContext: the query's context bounds the wait, whatever
// wait_timeout says.
func TestWaitQueryContext(t *testing.T) {
	w := newLiveWriter(t, 20*time.Millisecond)
	tok, err := token.Parse(w.token())
	if err != nil {
		t.Fatal(err)
	}
	c := conn(t, openDB(t, w.dsn("poll=1h", "wait_timeout=20s")))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	future := token.New(1001, tok.Time).String()
	_, err = c.ExecContext(ctx, `PRAGMA ltx_wait = '`+future+`'`)
	if err == nil {
		t.Fatal("a wait for a TXID never reached succeeded")
	}
	if !strings.Contains(err.Error(), "TXID 1001 not visible when the query's context ended") {
		t.Fatalf("wait ended by the query's context: %v", err)
	}
}

// TestWaitPinned: a pinned connection cannot move: a token newer than its
// pin is an error, an older one or its own is fine; the same inside a read
// transaction.
func TestWaitPinned(t *testing.T) {
	w := newLiveWriter(t, 20*time.Millisecond)
	w.insert(1)
	older := w.token()
	w.insert(2)
	newer := w.token()
	pin := txidOf(t, older)

	c := conn(t, openDB(t, w.dsn("poll=1h", "txid="+strconv.Itoa(int(pin)))))
	if got := one[string](t, c, `PRAGMA ltx_wait = '`+older+`'`); got != strconv.Itoa(int(pin)) {
		t.Fatalf("pinned at %d: ltx_wait of its own token returned %s", pin, got)
	}
	_, err := c.ExecContext(context.Background(), `PRAGMA ltx_wait = '`+newer+`'`)
	if err == nil || !strings.Contains(err.Error(), "newer than this connection's pin at TXID "+strconv.Itoa(int(pin))) {
		t.Fatalf("pinned at %d, a newer token: %v", pin, err)
	}
	if hasRow(t, c, 2) {
		t.Fatal("the pinned connection moved")
	}
	// Pinned in the DSN, with a newer token: the open fails.
	_, err = strs(openDB(t, w.dsn("txid="+strconv.Itoa(int(pin)), "wait="+url.QueryEscape(newer))), `SELECT v FROM t`)
	if err == nil || !strings.Contains(err.Error(), "newer than this connection's pin") {
		t.Fatalf("txid= with a newer wait=: %v", err)
	}

	// Inside a read transaction of a following connection.
	f := conn(t, openDB(t, w.dsn("poll=1h")))
	tx, err := f.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	seen := ints(t, tx, `SELECT count(*) FROM t`)[0]
	if seen != 2 {
		t.Fatalf("transaction sees %d rows", seen)
	}
	if _, err := tx.ExecContext(context.Background(), `PRAGMA ltx_wait = '`+older+`'`); err != nil {
		t.Fatalf("in a transaction at or past the token: %v", err)
	}
	w.insert(3)
	latest := w.token()
	_, err = tx.ExecContext(context.Background(), `PRAGMA ltx_wait = '`+latest+`'`)
	if err == nil || !strings.Contains(err.Error(), "this read transaction sees until COMMIT or ROLLBACK") {
		t.Fatalf("in a transaction behind the token: %v", err)
	}
}

// TestWaitCompactedTXID: when no file ends at the token's TXID any more
// (compacted, then deleted by retention), the token is checked against the
// commit times of the files around it.
func TestWaitCompactedTXID(t *testing.T) {
	src := pragmaSource(t) // TXIDs 1..5, a minute apart
	src.compact(1, 2, 4)
	src.remove(0, [2]ltx.TXID{2, 2}, [2]ltx.TXID{3, 3}, [2]ltx.TXID{4, 4})
	c := conn(t, src.open("poll=1h"))

	own := token.New(3, src.timeOf(3)).String()
	if got := one[string](t, c, `PRAGMA ltx_wait = '`+own+`'`); got != "5" {
		t.Fatalf("ltx_wait of TXID 3 (compacted) returned %s, want 5", got)
	}
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{src.timeOf(1).Add(-time.Second), "before TXID 1 was here"},
		{src.timeOf(4).Add(time.Second), "after TXID 4 was here (L1/0000000000000002-0000000000000004.ltx"},
	} {
		tok := token.New(3, tc.at).String()
		_, err := c.ExecContext(context.Background(), `PRAGMA ltx_wait = '`+tok+`'`)
		if err == nil || !strings.Contains(err.Error(), "not from this replica") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("token %s of TXID 3 committed at %s: %v, want an error saying %q", tok, tc.at, err, tc.want)
		}
	}
	// A TXID whose L0 file is still there is checked exactly.
	_, err := c.ExecContext(context.Background(), `PRAGMA ltx_wait = '`+token.New(5, src.timeOf(5).Add(time.Millisecond)).String()+`'`)
	if err == nil || !strings.Contains(err.Error(), "TXID 5 was committed at") {
		t.Errorf("token of TXID 5 a millisecond off: %v", err)
	}
}

// pollNumber is the error a test poll returns: which poll it was.
type pollNumber int

func (n pollNumber) Error() string { return "poll " + strconv.Itoa(int(n)) }

// TestPollGate: connections waiting together share polls, and none is
// answered by a poll that began before it asked (which could predate the
// TXID it waits for).
func TestPollGate(t *testing.T) {
	var (
		g       pollGate
		mu      sync.Mutex
		starts  []time.Time
		release = make(chan struct{})
	)
	poll := func(ctx context.Context) error {
		mu.Lock()
		starts = append(starts, time.Now())
		n := len(starts)
		mu.Unlock()
		if n == 1 {
			<-release // the first poll is in flight while the waiters ask
		}
		return pollNumber(n)
	}
	first := make(chan error, 1)
	go func() { first <- g.since(context.Background(), time.Now(), poll) }()
	for {
		mu.Lock()
		n := len(starts)
		mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	const waiters = 9
	type answer struct {
		asked time.Time
		err   error
	}
	answers := make(chan answer, waiters)
	for range waiters {
		go func() {
			asked := time.Now()
			answers <- answer{asked, g.since(context.Background(), asked, poll)}
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them queue behind the first poll
	close(release)
	if err := <-first; err != pollNumber(1) {
		t.Fatalf("the first waiter got %v, want its own poll 1", err)
	}
	for range waiters {
		a := <-answers
		var n pollNumber
		if !errors.As(a.err, &n) {
			t.Fatalf("waiter got %v", a.err)
		}
		mu.Lock()
		began := starts[n-1]
		mu.Unlock()
		if began.Before(a.asked) {
			t.Fatalf("a waiter that asked at %s was answered by poll %d, which began before, at %s", a.asked, n, began)
		}
	}
	if len(starts) >= 1+waiters {
		t.Fatalf("%d polls for %d waiters: none shared", len(starts), 1+waiters)
	}
	t.Logf("%d polls for %d waiters", len(starts), 1+waiters)
}
