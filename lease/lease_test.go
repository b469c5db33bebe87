package lease_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// TestLeaseHolderSucceeds: a restarted writer may take over at once only
// the lease of a writer of the same database, in the same kernel boot and
// PID namespace, whose process is gone; anything it cannot prove leaves the
// lease to lapse.
func TestLeaseHolderSucceeds(t *testing.T) {
	me := lease.ThisProcess("restarted writer", "/data/app.db")
	if me.PID != os.Getpid() || me.Path != "/data/app.db" || me.Owner != "restarted writer" {
		t.Fatalf("ThisProcess = %+v, want this process's PID, the path and the owner", me)
	}
	dead := storagetest.ExitedPredecessor(t, me)
	tests := []struct {
		name string
		me   lease.Holder
		held func(h *lease.Holder)
		want bool
	}{
		{"exited predecessor", me, func(*lease.Holder) {}, true},
		{"live parent process", me, func(h *lease.Holder) { h.PID = os.Getppid() }, false},
		{"this very process", me, func(h *lease.Holder) { h.PID = os.Getpid() }, false},
		{"no PID", me, func(h *lease.Holder) { h.PID = 0 }, false},
		{"another database", me, func(h *lease.Holder) { h.Path = "/data/other.db" }, false},
		{"another boot", me, func(h *lease.Holder) { h.BootID = "0b0e5c1a-0000-4000-8000-000000000000" }, false},
		{"another PID namespace", me, func(h *lease.Holder) { h.PIDNamespace = "pid:[1]" }, false},
		{"same host name only", me, func(h *lease.Holder) { h.BootID, h.PIDNamespace = "", "" }, false},
		{"a lease from before holders were stored", me, func(h *lease.Holder) { *h = lease.Holder{Owner: h.Owner} }, false},
		{"boot unreadable here", func() lease.Holder { h := me; h.BootID = ""; return h }(),
			func(h *lease.Holder) { h.BootID = "" }, false},
		{"PID namespace unreadable here", func() lease.Holder { h := me; h.PIDNamespace = ""; return h }(),
			func(h *lease.Holder) { h.PIDNamespace = "" }, false},
		{"not describing this process", func() lease.Holder { h := me; h.PID = os.Getppid(); return h }(),
			func(*lease.Holder) {}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			held := dead
			tt.held(&held)
			if got := tt.me.Succeeds(held); got != tt.want {
				t.Fatalf("%+v.Succeeds(%+v) = %v, want %v", tt.me, held, got, tt.want)
			}
		})
	}
}

// TestLeaseHolderSucceedsZombie: a predecessor killed but not yet reaped by
// its parent (a zombie, as under a container init slow to reap) has exited
// all the same: its lease may be taken over at once.
func TestLeaseHolderSucceedsZombie(t *testing.T) {
	me := lease.ThisProcess("restarted writer", "/data/app.db")
	dead := storagetest.ExitedPredecessor(t, me) // skips where nothing can be proven
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	stat := fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatal(err)
		}
		if s := string(b); strings.HasPrefix(strings.TrimSpace(s[strings.LastIndexByte(s, ')')+1:]), "Z") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the child never became a zombie: %s", stat, b)
		}
	}
	dead.PID = cmd.Process.Pid
	if !me.Succeeds(dead) {
		t.Fatalf("a zombie predecessor (PID %d) counts as alive", dead.PID)
	}
}
