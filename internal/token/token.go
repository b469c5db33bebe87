package token

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/superfly/ltx"
)

// Prefix begins every token of the format this package writes. The digit
// is the format's version: a reader refuses a version it does not know by
// name instead of misreading it.
const Prefix = "ltx1:"

// ErrInvalid is wrapped by every error of Parse.
var ErrInvalid = errors.New("invalid read-your-writes token")

// A Token says: the replica holds everything committed to the database
// before the token was made once it reaches TXID; the replica's file that
// ends at TXID has Time as its header timestamp (its commit time, in ms).
type Token struct {
	TXID ltx.TXID
	Time time.Time // truncated to the millisecond
}

// New is the token of txid, committed at t.
func New(txid ltx.TXID, t time.Time) Token {
	return Token{TXID: txid, Time: time.UnixMilli(t.UnixMilli()).UTC()}
}

// String is the token as text: "ltx1:<TXID, 16 hex digits>:<commit time,
// Unix ms>", like ltx1:00000000000004d2:1718000000123.
func (t Token) String() string {
	return Prefix + t.TXID.String() + ":" + strconv.FormatInt(t.Time.UnixMilli(), 10)
}

// Matches reports whether ms, a header timestamp of a file that ends at
// t.TXID, is the token's commit time.
func (t Token) Matches(ms int64) bool { return t.Time.UnixMilli() == ms }

// want is the format, for errors.
const want = "want ltx1:<TXID as 16 hex digits>:<commit time in Unix ms>, as writer.Replicator.SyncToken and ltx-writer's /sync return"

// Parse reads a token written by String. Its errors quote no part of s,
// which could be anything pasted (a URL with a password): the caller names
// the input, redacted.
func Parse(s string) (Token, error) {
	fail := func(format string, args ...any) (Token, error) {
		return Token{}, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	version, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.HasPrefix(version, "ltx") || !isDigits(version[3:]) {
		return fail("not a token (%s)", want)
	}
	if version+":" != Prefix {
		return fail("format %s is not known to this reader, which reads %s tokens: upgrade the reader", version, strings.TrimSuffix(Prefix, ":"))
	}
	txidText, msText, ok := strings.Cut(rest, ":")
	if !ok || strings.Contains(msText, ":") {
		return fail("not 3 fields separated by ':' (%s)", want)
	}
	if len(txidText) != 16 || !isHex(txidText) {
		return fail("its TXID is not 16 hex digits (%s)", want)
	}
	txid, err := ltx.ParseTXID(txidText)
	if err != nil || txid == 0 {
		return fail("TXID 0: TXIDs start at 1")
	}
	if !isDigits(msText) || len(msText) > 15 {
		// 15 digits: Unix ms run to the year 33658, past any commit.
		return fail("its commit time is not a number of Unix milliseconds (%s)", want)
	}
	ms, _ := strconv.ParseInt(msText, 10, 64)
	if ms == 0 {
		return fail("commit time 0: no replica commits at the Unix epoch")
	}
	return Token{TXID: txid, Time: time.UnixMilli(ms).UTC()}, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
