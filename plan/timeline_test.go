package plan

import (
	"errors"
	"testing"
	"time"

	"github.com/superfly/ltx"
)

func TestTXIDAt(t *testing.T) {
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(f *ltx.FileInfo, sec int) *ltx.FileInfo {
		f.CreatedAt = base.Add(time.Duration(sec) * time.Second)
		return f
	}
	files := []*ltx.FileInfo{
		at(fi(9, 1, 10), 10),
		at(fi(1, 11, 20), 20), // its L0 files are gone
		at(fi(0, 21, 21), 21), at(fi(0, 22, 22), 22), at(fi(0, 23, 23), 23),
	}
	tests := []struct {
		sec  int
		want ltx.TXID
		err  error
	}{
		{100, 23, nil},
		{23, 23, nil},
		{22, 22, nil},
		{21, 21, nil},
		{20, 20, nil},
		{19, 10, nil}, // 11..19 were compacted away: the nearest restorable TXID before
		{10, 10, nil},
		{9, 0, ErrTimeUnavailable},
	}
	for _, tt := range tests {
		got, err := TXIDAt(files, base.Add(time.Duration(tt.sec)*time.Second))
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("at +%ds: err %v, want %v", tt.sec, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("at +%ds: got %d, %v; want %d", tt.sec, got, err, tt.want)
		}
	}
}
