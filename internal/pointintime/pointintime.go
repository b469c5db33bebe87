package pointintime

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// ErrInvalid is wrapped by every error of ParseTXID and ParseTime.
var ErrInvalid = errors.New("invalid point in time")

// ParseTXID parses a TXID written in decimal ("42") or as exactly 16 hex
// digits, the spelling of LTX file names ("000000000000002a"). A 16-digit
// string is always read as hex, so that a TXID copied from a file name means
// what it says (a decimal TXID of 16 digits, 10^15 or more, needs a
// leading zero). TXIDs start at 1: zero is an error.
func ParseTXID(s string) (ltx.TXID, error) {
	var (
		v   uint64
		err error
	)
	switch {
	case s == "":
		return 0, fmt.Errorf("%w: txid is empty: want a decimal number or 16 hex digits", ErrInvalid)
	case len(s) == 16 && isHex(s):
		v, err = strconv.ParseUint(s, 16, 64)
	case isDecimal(s):
		v, err = strconv.ParseUint(s, 10, 64)
	default:
		return 0, fmt.Errorf("%w: txid %q: want a decimal number or 16 hex digits", ErrInvalid, storage.Shown(s))
	}
	if err != nil {
		return 0, fmt.Errorf("%w: txid %q: out of range", ErrInvalid, storage.Shown(s))
	}
	if v == 0 {
		return 0, fmt.Errorf("%w: txid %q: TXIDs start at 1", ErrInvalid, storage.Shown(s))
	}
	return ltx.TXID(v), nil
}

// ParseTime parses an absolute time in RFC 3339, with or without fractional
// seconds ("2025-01-02T15:04:05Z", "2025-01-02T15:04:05.123+02:00"), or a
// time relative to now: a minus sign and a Go duration ("-5m", "-1h30m",
// "-90s"). A relative time must point to the past; "-0s" is now.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%w: time is empty: want RFC 3339 (2006-01-02T15:04:05Z) or a relative time like -5m", ErrInvalid)
	}
	if s[0] == '-' || s[0] == '+' {
		d, err := time.ParseDuration(s)
		if err != nil || s[0] == '+' || strings.ContainsAny(s[1:], "+-") {
			return time.Time{}, fmt.Errorf("%w: time %q: a relative time is a minus sign and a duration, like -5m or -1h30m", ErrInvalid, storage.Shown(s))
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: time %q: want RFC 3339 (2006-01-02T15:04:05Z) or a relative time like -5m", ErrInvalid, storage.Shown(s))
	}
	return t, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isDecimal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
