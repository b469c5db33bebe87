package pointintime

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"
)

func TestParseTXID(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want ltx.TXID
	}{
		{"1", 1},
		{"42", 42},
		{"000000000000002a", 42},
		{"000000000000002A", 42},
		{"0000000000000010", 16}, // 16 digits: hex, as in a file name
		{"ffffffffffffffff", ltx.TXID(^uint64(0))},
		{"18446744073709551615", ltx.TXID(^uint64(0))},
		{"007", 7},
	} {
		got, err := ParseTXID(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseTXID(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTXIDErrors(t *testing.T) {
	for _, in := range []string{"", "abc", "0", "0000000000000000", "-1", "+1", " 1", "1 ", "0x10", "1e3",
		"18446744073709551616", "00000000000000zz", "0000000000000002aa"} {
		_, err := ParseTXID(in)
		if err == nil {
			t.Errorf("ParseTXID(%q): no error", in)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseTXID(%q): %v does not wrap ErrInvalid", in, err)
		}
		if in != "" && !strings.Contains(err.Error(), strconv.Quote(in)) {
			t.Errorf("ParseTXID(%q): error %q does not name the input", in, err)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Time
	}{
		{"2025-01-02T15:04:05Z", time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)},
		{"2025-01-02T15:04:05.123Z", time.Date(2025, 1, 2, 15, 4, 5, 123e6, time.UTC)},
		{"2025-01-02T17:04:05.5+02:00", time.Date(2025, 1, 2, 15, 4, 5, 5e8, time.UTC)},
		{"-5m", now.Add(-5 * time.Minute)},
		{"-1h30m", now.Add(-90 * time.Minute)},
		{"-1.5s", now.Add(-1500 * time.Millisecond)},
		{"-0s", now},
	} {
		got, err := ParseTime(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTimeErrors(t *testing.T) {
	now := time.Now()
	for _, in := range []string{"", "yesterday", "5m", "+5m", "--5m", "-5", "-", "-5m-3s", "2025-01-02", "2025-01-02 15:04:05",
		"2025-01-02T15:04:05", "2025-13-02T15:04:05Z", "1735830245"} {
		_, err := ParseTime(in, now)
		if err == nil {
			t.Errorf("ParseTime(%q): no error", in)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseTime(%q): %v does not wrap ErrInvalid", in, err)
		}
		if in != "" && !strings.Contains(err.Error(), strconv.Quote(in)) {
			t.Errorf("ParseTime(%q): error %q does not name the input", in, err)
		}
	}
}

func FuzzParseTXID(f *testing.F) {
	for _, s := range []string{"1", "42", "000000000000002a", "ffffffffffffffff", "abc", "0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseTXID(s)
		if err != nil {
			if v != 0 {
				t.Fatalf("ParseTXID(%q) = %d with error %v", s, v, err)
			}
			return
		}
		if v == 0 {
			t.Fatalf("ParseTXID(%q) = 0 without error", s)
		}
		// Both spellings of the result must parse back to it; a decimal
		// of exactly 16 digits reads as hex, so it gets a leading zero.
		dec := strconv.FormatUint(uint64(v), 10)
		if len(dec) == 16 {
			dec = "0" + dec
		}
		for _, spelled := range []string{dec, v.String()} {
			if got, err := ParseTXID(spelled); err != nil || got != v {
				t.Fatalf("ParseTXID(%q) = %d; round trip of %q gave %d, %v", s, v, spelled, got, err)
			}
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2025-01-02T15:04:05Z", "2025-01-02T15:04:05.123+02:00", "-5m", "-1h30m", "yesterday", "+5m", ""} {
		f.Add(s)
	}
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, now)
		if err != nil {
			return
		}
		if strings.HasPrefix(s, "-") {
			if got.After(now) {
				t.Fatalf("ParseTime(%q) = %v: a relative time after now (%v)", s, got, now)
			}
			return
		}
		back, err := ParseTime(got.Format(time.RFC3339Nano), now)
		if err != nil || !back.Equal(got) {
			t.Fatalf("ParseTime(%q) = %v; round trip gave %v, %v", s, got, back, err)
		}
	})
}
