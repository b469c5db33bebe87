package storage_test

import (
	"os"
	"testing"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// TestLeaseHolderSucceeds: a restarted writer may take over at once only
// the lease of a writer of the same database, in the same kernel boot and
// PID namespace, whose process is gone; anything it cannot prove leaves the
// lease to lapse.
func TestLeaseHolderSucceeds(t *testing.T) {
	me := storage.ThisProcess("restarted writer", "/data/app.db")
	if me.PID != os.Getpid() || me.Path != "/data/app.db" || me.Owner != "restarted writer" {
		t.Fatalf("ThisProcess = %+v, want this process's PID, the path and the owner", me)
	}
	dead := storagetest.ExitedPredecessor(t, me)
	tests := []struct {
		name string
		me   storage.LeaseHolder
		held func(h *storage.LeaseHolder)
		want bool
	}{
		{"exited predecessor", me, func(*storage.LeaseHolder) {}, true},
		{"live parent process", me, func(h *storage.LeaseHolder) { h.PID = os.Getppid() }, false},
		{"this very process", me, func(h *storage.LeaseHolder) { h.PID = os.Getpid() }, false},
		{"no PID", me, func(h *storage.LeaseHolder) { h.PID = 0 }, false},
		{"another database", me, func(h *storage.LeaseHolder) { h.Path = "/data/other.db" }, false},
		{"another boot", me, func(h *storage.LeaseHolder) { h.BootID = "0b0e5c1a-0000-4000-8000-000000000000" }, false},
		{"another PID namespace", me, func(h *storage.LeaseHolder) { h.PIDNamespace = "pid:[1]" }, false},
		{"same host name only", me, func(h *storage.LeaseHolder) { h.BootID, h.PIDNamespace = "", "" }, false},
		{"a lease from before holders were stored", me, func(h *storage.LeaseHolder) { *h = storage.LeaseHolder{Owner: h.Owner} }, false},
		{"boot unreadable here", func() storage.LeaseHolder { h := me; h.BootID = ""; return h }(),
			func(h *storage.LeaseHolder) { h.BootID = "" }, false},
		{"PID namespace unreadable here", func() storage.LeaseHolder { h := me; h.PIDNamespace = ""; return h }(),
			func(h *storage.LeaseHolder) { h.PIDNamespace = "" }, false},
		{"not describing this process", func() storage.LeaseHolder { h := me; h.PID = os.Getppid(); return h }(),
			func(*storage.LeaseHolder) {}, false},
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
