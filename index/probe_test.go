package index

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/superfly/ltx"
)

func mustProbe(tb testing.TB, x *Index) (*Version, bool) {
	tb.Helper()
	v, found, err := x.Probe(context.Background())
	if err != nil {
		tb.Fatalf("probe: %v", err)
	}
	return v, found
}

// TestProbe: a new TXID costs one read and no listing; nothing new costs
// one read; a later listing reads nothing again and keeps the version.
func TestProbe(t *testing.T) {
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(50)
	v := mustUpdate(t, x)

	r.client.Reset()
	if got, found := mustProbe(t, x); found || got != v {
		t.Fatal("a probe with nothing new found something")
	}
	if c := r.client.Counts(); c.Lists != 0 || c.Opens != 1 {
		t.Fatalf("probe with nothing new: %d lists, %d reads; want 0, 1", c.Lists, c.Opens)
	}

	r.apply(50, 1, 7)
	r.apply(60, 1, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60) // grows
	r.apply(30, 1)                                         // shrinks
	for range 3 {
		r.client.Reset()
		nv, found := mustProbe(t, x)
		if !found || nv.TXID() != v.TXID()+1 || x.Latest() != nv {
			t.Fatalf("probe after TXID %d: found %v, TXID %d", v.TXID(), found, nv.TXID())
		}
		if c := r.client.Counts(); c.Lists != 0 || c.Opens != 1 {
			t.Fatalf("probe of a new file: %d lists, %d reads; want 0, 1", c.Lists, c.Opens)
		}
		r.check(nv)
		v = nv
	}

	r.client.Reset()
	if again := mustUpdate(t, x); again != v {
		t.Fatal("a listing after probes made a new version")
	}
	if c := r.client.Counts(); c.Opens != 0 {
		t.Fatalf("a listing after probes read %d files again", c.Opens)
	}
}

// TestProbeAndListFollowHistory: probes and listings interleaved over a
// random history with compactions, snapshots and retention: every version
// is exact.
func TestProbeAndListFollowHistory(t *testing.T) {
	r := newTestReplica(t)
	x := New(r.client, Options{})
	rng := rand.New(rand.NewPCG(5, 6))
	r.grow(40)
	mustUpdate(t, x)
	var compacted ltx.TXID = 1
	removed := 0
	for step := range 60 {
		commit := r.db.Commit()
		switch n := rng.IntN(8); {
		case n == 0 && commit > 5:
			r.apply(commit-uint32(rng.IntN(int(commit/2)))-1, 1)
		case n == 1:
			r.grow(commit + uint32(rng.IntN(30)) + 1)
		default:
			r.apply(commit, 1, uint32(rng.IntN(int(commit)))+1, uint32(rng.IntN(int(commit)))+1)
		}
		txid := r.db.TXID()
		if txid%7 == 0 {
			r.compact(1, compacted+1, txid-2)
			if step > 30 && step%4 == 3 {
				// Retention, just before a listing: a probe cannot see
				// it (a read of a removed file replans, see Replan).
				for t := compacted + 1; t <= txid-4; t++ {
					r.remove(0, t, t)
					removed++
				}
			}
			compacted = txid - 2
		}
		if step == 40 {
			r.snapshot()
		}
		var v *Version
		if step%4 == 3 {
			v = mustUpdate(t, x)
		} else if nv, found, err := x.Probe(context.Background()); err == nil && found {
			v = nv
		} else {
			v = mustUpdate(t, x) // what a poller does when a probe cannot tell
		}
		if v.TXID() != txid {
			t.Fatalf("step %d: TXID %d, want %d", step, v.TXID(), txid)
		}
		r.check(v)
	}
	if removed == 0 {
		t.Fatal("the history had no retention")
	}
}

// TestProbeRefusesWhatItCannotTrust: a probed file that was cut short (an
// open-ended read that ended cleanly), that is damaged, or that does not
// continue the latest version is an error, and the latest version stays.
func TestProbeRefusesWhatItCannotTrust(t *testing.T) {
	r := newTestReplica(t)
	r.grow(20)
	r.apply(20, 2)
	r.grow(900) // a file of several KiB, to cut short
	short := wrap.NewFaulty(r.client, wrap.FaultyConfig{Seed: 1})
	x := New(short, Options{})
	v, err := x.Update(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.apply(900, 1, 3, 400, 800)

	short.SetBehaviour(wrap.OpOpen, wrap.Behaviour{ShortRate: 1})
	if _, _, err := x.Probe(context.Background()); err == nil {
		t.Fatal("a probe of a body cut short succeeded")
	}
	short.SetBehaviour(wrap.OpOpen, wrap.Behaviour{})
	if x.Latest() != v {
		t.Fatal("a failed probe changed the latest version")
	}

	data := append([]byte(nil), r.l0[v.TXID()+1]...)
	data[len(data)/2] ^= 0xff
	r.putRaw(0, v.TXID()+1, v.TXID()+1, data)
	if _, _, err := x.Probe(context.Background()); !errors.Is(err, ltx.ErrChecksumMismatch) {
		t.Fatalf("probe of a damaged file: %v, want ltx.ErrChecksumMismatch", err)
	}

	// A file of another database, named as the next TXID: its pre-apply
	// checksum does not match the state the latest version left.
	other := newTestReplica(t)
	for range int(v.TXID()) {
		other.grow(10)
	}
	other.apply(10, 1)
	r.putRaw(0, v.TXID()+1, v.TXID()+1, other.l0[v.TXID()+1])
	if _, _, err := x.Probe(context.Background()); err == nil {
		t.Fatal("a probe took in a file that does not continue the latest version")
	}
	if x.Latest() != v {
		t.Fatal("a failed probe changed the latest version")
	}
}
