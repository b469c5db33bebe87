package vfs

import (
	"context"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// One query compares two points in time: the main database follows, an
// ATTACHed copy of the same replica is pinned.
func TestAttachAnOlderTXID(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE price(item TEXT PRIMARY KEY, cents INTEGER)`)
	src.exec(`INSERT INTO price VALUES ('apple', 100), ('pear', 200), ('plum', 300)`) // 2
	src.exec(`UPDATE price SET cents = cents + 5 WHERE item != 'pear'`)               // 3
	src.exec(`INSERT INTO price VALUES ('fig', 400)`)                                 // 4

	db := src.open()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`ATTACH ? AS old`, "file:old.db?vfs=ltx&txid=2&replica="+url.QueryEscape(src.dir)); err != nil {
		t.Fatalf("attach: %v", err)
	}
	rows, err := db.Query(`
		SELECT item, coalesce(old.price.cents, -1), main.price.cents
		FROM main.price LEFT JOIN old.price USING (item)
		ORDER BY item`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var item string
		var before, now int64
		if err := rows.Scan(&item, &before, &now); err != nil {
			t.Fatal(err)
		}
		got = append(got, item+":"+strconv.FormatInt(before, 10)+"->"+strconv.FormatInt(now, 10))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := "apple:100->105 fig:-1->400 pear:200->200 plum:300->305"
	if strings.Join(got, " ") != want {
		t.Fatalf("diff of TXID 2 and latest:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	if got := one[string](t, db, `PRAGMA old.ltx_txid`); got != "2" {
		t.Fatalf("PRAGMA old.ltx_txid = %s", got)
	}
	if got := one[string](t, db, `PRAGMA main.ltx_txid`); got != "4" {
		t.Fatalf("PRAGMA main.ltx_txid = %s", got)
	}
	// Both schemas share one replica state.
	registryMu.Lock()
	refs := replicas[src.key()].refs
	registryMu.Unlock()
	if refs != 2 {
		t.Fatalf("the replica has %d references, want 2 (main and old)", refs)
	}
}

func TestAttachInCode(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(x)`)
	src.exec(`INSERT INTO t VALUES (1), (2)`)

	if err := Attach("", Options{Client: src.client}); err == nil {
		t.Error("Attach with an empty name: no error")
	}
	if err := Attach("x", Options{}); err == nil {
		t.Error("Attach without a client or URL: no error")
	}
	if err := Attach("x", Options{Client: src.client, URL: src.dir}); err == nil {
		t.Error("Attach with a client and a URL: no error")
	}
	if err := Attach("x", Options{URL: "ftp://nowhere"}); err == nil || !strings.Contains(err.Error(), "ftp") {
		t.Errorf("Attach with a bad URL: %v", err)
	}

	attach(t, "inventory", Options{URL: src.dir, CacheBytes: 1 << 20, Poll: time.Hour})
	if err := Attach("inventory", Options{Client: src.client}); err == nil {
		t.Error("Attach of a name already attached: no error")
	}
	db := openDB(t, "file:inventory?vfs=ltx")
	if got := ints(t, db, `SELECT count(*) FROM t`); got[0] != 2 {
		t.Fatalf("%v rows, want 2", got)
	}
	// Pinning parameters work with an attached name.
	pinned := openDB(t, "file:inventory?vfs=ltx&txid=1")
	if got := ints(t, pinned, `SELECT count(*) FROM t`); got[0] != 0 {
		t.Fatalf("txid=1: %v rows, want 0", got)
	}

	// Detach: open connections keep working; new opens fail.
	db.SetMaxOpenConns(1)
	c := conn(t, db)
	Detach("inventory")
	if got := ints(t, c, `SELECT count(*) FROM t`); got[0] != 2 {
		t.Fatalf("after Detach, an open connection: %v rows, want 2", got)
	}
	fresh := openDB(t, "file:inventory?vfs=ltx")
	if _, err := fresh.Exec(`SELECT count(*) FROM t`); err == nil || !strings.Contains(err.Error(), "vfs.Attach") {
		t.Fatalf("open after Detach: %v, want an error naming vfs.Attach", err)
	}
	Detach("inventory") // twice is harmless
}

// One poller per replica runs while, and only while, a following
// connection is open; closing everything leaves no goroutine behind.
func TestPollerLifecycle(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(x)`)
	src.exec(`INSERT INTO t VALUES (1)`)
	counting := wrap.NewCounting(src.client)
	attach(t, "polled", Options{Client: counting, Poll: 5 * time.Millisecond})
	r := func() *replica {
		registryMu.Lock()
		defer registryMu.Unlock()
		return replicas[attachKey("polled")]
	}()

	polling := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.pollDone != nil {
			return 1
		}
		return 0
	}
	if n := polling(); n != 0 {
		t.Fatalf("%d pollers before any connection", n)
	}
	pinned := openDB(t, "file:polled?vfs=ltx&txid=1")
	ints(t, pinned, `SELECT count(*) FROM t`)
	if n := polling(); n != 0 {
		t.Fatalf("%d pollers with only a pinned connection, want 0", n)
	}

	a, b := openDB(t, "file:polled?vfs=ltx"), openDB(t, "file:polled?vfs=ltx")
	a.SetMaxOpenConns(4)
	ints(t, a, `SELECT count(*) FROM t`)
	ints(t, b, `SELECT count(*) FROM t`)
	if n := polling(); n != 1 {
		t.Fatalf("%d pollers with two following connections, want 1", n)
	}
	// The poller makes new rows visible by itself.
	src.exec(`INSERT INTO t VALUES (2)`)
	waitFor(t, "the poller to see TXID 3", func() bool { return ints(t, a, `SELECT count(*) FROM t`)[0] == 2 })

	a.Close()
	if n := polling(); n != 1 {
		t.Fatalf("%d pollers after closing one of two followers, want 1", n)
	}
	b.Close()
	if n := polling(); n != 0 {
		t.Fatalf("%d pollers after the last follower closed, want 0", n)
	}
	// Stopped means no more requests.
	counting.Reset()
	time.Sleep(30 * time.Millisecond)
	if c := counting.Counts(); c.Lists != 0 {
		t.Fatalf("%d listings after the poller stopped", c.Lists)
	}
	// A pinned connection switching to latest starts it; closing stops it.
	c := conn(t, pinned)
	if _, err := c.ExecContext(context.Background(), `PRAGMA ltx_txid = latest`); err != nil {
		t.Fatal(err)
	}
	if n := polling(); n != 1 {
		t.Fatalf("%d pollers after ltx_txid = latest, want 1", n)
	}
	c.Close()
	pinned.Close()
	if n := polling(); n != 0 {
		t.Fatalf("%d pollers after every connection closed, want 0", n)
	}
	waitFor(t, "no poller goroutine", func() bool { return pollers() == 0 })
	r.mu.Lock()
	refs, followers := r.refs, r.followers
	r.mu.Unlock()
	if refs != 1 || followers != 0 {
		t.Fatalf("after every connection closed: refs %d (want 1, the attachment), followers %d", refs, followers)
	}
}

// A replica opened by URL is shared by its connections and forgotten with
// the last one.
func TestReplicaSharedByURL(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(x)`)
	a := src.open()
	b := openDB(t, "file:other.db?vfs=ltx&replica="+url.QueryEscape("file://"+src.dir+"/"))
	ints(t, a, `SELECT count(*) FROM t`)
	ints(t, b, `SELECT count(*) FROM t`)
	registryMu.Lock()
	r := replicas[src.key()]
	n := len(replicas)
	registryMu.Unlock()
	if r == nil || r.refs != 2 {
		t.Fatalf("a bare path and a file:/// URL of one directory do not share a replica (%d replicas)", n)
	}
	a.Close()
	b.Close()
	registryMu.Lock()
	r = replicas[src.key()]
	registryMu.Unlock()
	if r != nil {
		t.Fatal("the replica outlived its last connection")
	}
	waitFor(t, "no poller goroutine", func() bool { return pollers() == 0 })
}

// pollers counts the poller goroutines of every replica.
func pollers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "vfs.(*replica).pollLoop(")
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
