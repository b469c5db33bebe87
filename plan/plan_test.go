package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/superfly/ltx"
)

func fi(level int, min, max ltx.TXID) *ltx.FileInfo {
	return &ltx.FileInfo{Level: level, MinTXID: min, MaxTXID: max}
}

func names(plan []*ltx.FileInfo) string {
	var s []string
	for _, f := range plan {
		s = append(s, fmt.Sprintf("L%d:%d-%d", f.Level, f.MinTXID, f.MaxTXID))
	}
	return strings.Join(s, " ")
}

func TestPlan(t *testing.T) {
	// A history as the writer leaves it: a daily snapshot, L2 and L1
	// compactions, and L0 files, some already compacted.
	files := []*ltx.FileInfo{
		fi(9, 1, 100),
		fi(2, 101, 160), fi(1, 101, 130), fi(1, 131, 160), fi(1, 161, 170),
		fi(0, 161, 161), fi(0, 162, 162), fi(0, 163, 163), fi(0, 164, 164), fi(0, 165, 165),
		fi(0, 166, 166), fi(0, 167, 167), fi(0, 168, 168), fi(0, 169, 169), fi(0, 170, 170),
		fi(0, 171, 171), fi(0, 172, 172),
	}
	tests := []struct {
		target ltx.TXID
		want   string
		err    error
	}{
		{0, "L9:1-100 L2:101-160 L1:161-170 L0:171-171 L0:172-172", nil},
		{172, "L9:1-100 L2:101-160 L1:161-170 L0:171-171 L0:172-172", nil},
		{170, "L9:1-100 L2:101-160 L1:161-170", nil},
		{165, "L9:1-100 L2:101-160 L0:161-161 L0:162-162 L0:163-163 L0:164-164 L0:165-165", nil},
		{130, "L9:1-100 L1:101-130", nil},
		{100, "L9:1-100", nil},
		{120, "", ErrTXIDUnavailable}, // inside an L1 whose L0 files are gone
		{50, "", ErrTXIDUnavailable},  // before the oldest snapshot
		{173, "", ErrTXIDNotFound},
	}
	for _, tt := range tests {
		plan, err := Restore(files, tt.target)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Restore(%d): err %v, want %v", tt.target, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Restore(%d): %v", tt.target, err)
			continue
		}
		if got := names(plan); got != tt.want {
			t.Errorf("Restore(%d) = %s\nwant          %s", tt.target, got, tt.want)
		}
	}
}

func TestPlanStartsAtAnyFileHoldingTXID1(t *testing.T) {
	// Litestream's first L0 file is a full snapshot; no L9 exists yet.
	files := []*ltx.FileInfo{fi(0, 1, 1), fi(0, 2, 2), fi(0, 3, 3), fi(1, 1, 2)}
	plan, err := Restore(files, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(plan), "L1:1-2 L0:3-3"; got != want {
		t.Fatalf("plan %s, want %s", got, want)
	}
}

func TestPlanPrefersNewestSnapshot(t *testing.T) {
	// L1 11-60 overlaps the newer snapshot, which it may follow.
	files := []*ltx.FileInfo{fi(9, 1, 10), fi(9, 1, 50), fi(1, 11, 60)}
	plan, err := Restore(files, 60)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(plan), "L9:1-50 L1:11-60"; got != want {
		t.Fatalf("plan %s, want %s", got, want)
	}
}

func TestPlanOverlappingFilesStayContiguous(t *testing.T) {
	// L1 11-17 and L0 16-18 overlap; applying both is still exact at 18.
	files := []*ltx.FileInfo{fi(9, 1, 10), fi(1, 11, 17), fi(0, 11, 15), fi(1, 16, 18)}
	plan, err := Restore(files, 18)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(plan), "L9:1-10 L1:11-17 L1:16-18"; got != want {
		t.Fatalf("plan %s, want %s", got, want)
	}
}

func TestPlanGapStopsTheChain(t *testing.T) {
	files := []*ltx.FileInfo{fi(9, 1, 10), fi(0, 11, 11), fi(0, 13, 13)}
	plan, err := Restore(files, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(plan), "L9:1-10 L0:11-11"; got != want {
		t.Fatalf("latest plan across a gap = %s, want %s", got, want)
	}
	if _, err := Restore(files, 13); !errors.Is(err, ErrTXIDUnavailable) {
		t.Fatalf("Restore(13) across a gap: %v, want ErrTXIDUnavailable", err)
	}
	if _, err := Restore(nil, 0); !errors.Is(err, ErrNoFiles) {
		t.Fatalf("Plan of nothing: %v, want ErrNoFiles", err)
	}
}
