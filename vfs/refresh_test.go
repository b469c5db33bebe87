package vfs

import (
	"context"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// TestRefreshWaitHonoursContext: a connection that starts to follow while
// another one's refresh hangs on storage gives up with its own context,
// instead of waiting for the other's to end.
func TestRefreshWaitHonoursContext(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY)`)
	faulty := wrap.NewFaulty(src.client, wrap.FaultyConfig{Seed: 1})
	name := "refresh-" + t.Name()
	if err := Attach(name, Options{Client: faulty, Poll: time.Hour}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Detach(name) })
	a := conn(t, openDB(t, "file:"+name+"?vfs=ltx&txid=1"))
	b := conn(t, openDB(t, "file:"+name+"?vfs=ltx&txid=1"))

	// Storage hangs, and the last poll is made old so that following
	// refreshes.
	registryMu.Lock()
	r := replicas[attachKey(name)]
	registryMu.Unlock()
	r.lastPoll.Store(0)
	hang := wrap.Behaviour{FirstByte: time.Hour}
	for _, op := range []wrap.Op{wrap.OpList, wrap.OpOpen, wrap.OpObjectRead, wrap.OpObjectList} {
		faulty.SetBehaviour(op, hang)
	}
	actx, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	aDone := make(chan error, 1)
	go func() {
		_, err := a.ExecContext(actx, `PRAGMA ltx_txid = latest`)
		aDone <- err
	}()
	// Until a holds the refresh, b could take it itself: wait for a's
	// request to be under way.
	for i := 0; !r.refreshing(); i++ {
		if i > 10000 {
			t.Fatal("the first connection never started its refresh")
		}
		time.Sleep(time.Millisecond)
	}
	bctx, cancelB := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelB()
	bDone := make(chan error, 1)
	go func() {
		_, err := b.ExecContext(bctx, `PRAGMA ltx_txid = latest`)
		bDone <- err
	}()
	var err error
	select {
	case err = <-bDone:
	case <-time.After(time.Minute): // a guard against hanging, far past b's context
		cancelA()
		t.Fatal("the second connection waited past its context for the first's refresh")
	}
	if err == nil {
		t.Fatal("the second connection followed while storage hangs")
	}
	select {
	case err := <-aDone:
		t.Fatalf("the first connection's refresh ended (%v) before the second gave up: the test proves nothing", err)
	default:
	}
	if bctx.Err() == nil {
		t.Fatalf("the second connection failed before its context ended: %v", err)
	}
	cancelA()
	if err := <-aDone; err == nil {
		t.Fatal("the first connection followed while storage hung")
	}
}
