package vfs

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/pointintime"
	"github.com/ltxvfs/ltxvfs/internal/token"
	"github.com/ltxvfs/ltxvfs/storage"
)

// Defaults for what neither the DSN nor Options set.
const (
	DefaultPoll       = time.Second
	DefaultCacheBytes = 64 << 20
)

// params are the URI parameters of one database filename.
type params struct {
	replica    string // raw replica URL; "" when not given
	hasReplica bool

	txid     ltx.TXID  // pin at this TXID (0: not given)
	txidRaw  string    // txid= as given, for errors
	at       time.Time // pin at the newest TXID committed at or before this time
	atRaw    string    // time= as given, for errors
	hasTime  bool
	poll     time.Duration // 0: not given
	cacheMax int64         // 0: not given

	diskDir   string // diskcache=: the disk tier's directory ("": none)
	diskBytes int64  // diskcache_size=: its bound (0: not given)

	budget budget // max_requests=, max_bytes= (budget.go)

	wait        token.Token // wait=: a read-your-writes token to see at open (wait.go)
	waitRaw     string      // wait= as given, for errors
	hasWait     bool
	waitTimeout time.Duration // wait_timeout= (0: not given)
}

// following reports whether the connection follows the newest TXID.
func (p params) following() bool { return p.txid == 0 && !p.hasTime }

// parseParams reads the URI parameters the VFS owns. Others (mode, psow,
// _pragma, ...) belong to SQLite or the driver and are left alone, except
// the two that would switch off the per-transaction snapshots.
//
// The cache budget is pagecache=, not DESIGN.md's cache=: SQLite owns cache=
// (shared|private) and rejects any other value before a VFS sees it.
//
// An error quotes the values it is about, and every value is shown through
// storage.Redact: a replica URL pasted into txid= or time= keeps its
// credentials out of the message (and so out of logs).
func parseParams(q url.Values, now time.Time) (params, error) {
	p, err := readParams(q, now)
	if err != nil {
		return p, redactValues(err, q)
	}
	return p, nil
}

// redactedError is an error whose message shows parameter values redacted.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactValues returns err with every value of q in its message, plain or
// quoted, replaced by what storage.Redact shows of it.
func redactValues(err error, q url.Values) error {
	msg := err.Error()
	for _, vs := range q {
		for _, v := range vs {
			if r := storage.Redact(v); r != v {
				msg = strings.ReplaceAll(msg, strconv.Quote(v), strconv.Quote(r))
				msg = strings.ReplaceAll(msg, v, r)
			}
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

func readParams(q url.Values, now time.Time) (params, error) {
	var p params
	one := func(key string) (string, bool, error) {
		vs, ok := q[key]
		if !ok {
			return "", false, nil
		}
		if len(vs) != 1 {
			return "", true, fmt.Errorf("parameter %s given %d times", key, len(vs))
		}
		return vs[0], true, nil
	}

	v, ok, err := one("replica")
	if err != nil {
		return p, err
	}
	if ok {
		if strings.TrimSpace(v) == "" {
			return p, fmt.Errorf("replica= is empty: give a URL-escaped replica URL, like replica=s3%%3A%%2F%%2Fbucket%%2Fprefix or replica=%%2Fabs%%2Fdir")
		}
		p.replica, p.hasReplica = v, true
	}

	if v, ok, err = one("txid"); err != nil {
		return p, err
	} else if ok {
		if p.txid, err = pointintime.ParseTXID(v); err != nil {
			return p, err // names txid and the value
		}
		p.txidRaw = v
	}
	if v, ok, err = one("time"); err != nil {
		return p, err
	} else if ok {
		if p.txid != 0 {
			return p, fmt.Errorf("txid=%s and time=%s both given: pin by one of them", q.Get("txid"), v)
		}
		if p.at, err = pointintime.ParseTime(v, now); err != nil {
			return p, err // names time and the value
		}
		p.atRaw, p.hasTime = v, true
	}
	if v, ok, err = one("poll"); err != nil {
		return p, err
	} else if ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return p, fmt.Errorf("poll=%s: want a positive duration, like poll=1s or poll=250ms", v)
		}
		p.poll = d
	}
	if v, ok, err = one("pagecache"); err != nil {
		return p, err
	} else if ok {
		n, err := ParseSize(v)
		if err != nil {
			return p, fmt.Errorf("pagecache=%s: %w", v, err)
		}
		p.cacheMax = n
	}
	if v, ok, err = one("diskcache"); err != nil {
		return p, err
	} else if ok {
		if strings.TrimSpace(v) == "" {
			return p, fmt.Errorf("diskcache= is empty: give a directory (URL-escaped) where pages are kept across restarts")
		}
		p.diskDir = v
	}
	if v, ok, err = one("diskcache_size"); err != nil {
		return p, err
	} else if ok {
		n, err := ParseSize(v)
		if err != nil {
			return p, fmt.Errorf("diskcache_size=%s: %w", v, err)
		}
		if p.diskDir == "" {
			return p, fmt.Errorf("diskcache_size=%s without diskcache=DIR: give the directory too", v)
		}
		p.diskBytes = n
	}
	maxRequests, hasRequests, err := one("max_requests")
	if err != nil {
		return p, err
	}
	maxBytes, hasBytes, err := one("max_bytes")
	if err != nil {
		return p, err
	}
	if p.budget, err = parseBudget(maxRequests, maxBytes, hasRequests, hasBytes); err != nil {
		return p, err
	}
	wait, hasWait, err := one("wait")
	if err != nil {
		return p, err
	}
	waitTimeout, hasTimeout, err := one("wait_timeout")
	if err != nil {
		return p, err
	}
	if p.wait, p.waitTimeout, err = waitParams(wait, waitTimeout, hasWait, hasTimeout); err != nil {
		return p, err
	}
	p.waitRaw, p.hasWait = wait, hasWait
	for _, key := range []string{"immutable", "nolock"} {
		if v, ok := q[key]; ok && len(v) > 0 {
			if b, err := strconv.ParseBool(v[0]); err != nil || b {
				return p, fmt.Errorf("%s=%s is not supported by the ltx VFS: it would stop SQLite from taking the locks that pin each read transaction to one TXID (use txid= or time= to pin a connection)", key, v[0])
			}
		}
	}
	// A misspelled parameter of ours would be ignored, as SQLite ignores
	// the parameters it does not know: txdi=4 would read the latest TXID,
	// not TXID 4. Refuse the near misses.
	for key, vs := range q {
		if otherParams[key] {
			continue
		}
		for _, ours := range ownParams {
			if key != ours && nearMiss(key, ours) {
				return p, fmt.Errorf("unknown parameter %s=%s: did you mean %s=? (an unknown parameter is ignored)", key, strings.Join(vs, ","), ours)
			}
		}
	}
	return p, nil
}

// ownParams are the parameters the VFS reads; otherParams those of SQLite
// and the driver, which are left alone even when they look like ours.
var (
	ownParams   = []string{"replica", "txid", "time", "poll", "pagecache", "diskcache", "diskcache_size", "max_requests", "max_bytes", "wait", "wait_timeout"}
	otherParams = map[string]bool{"vfs": true, "mode": true, "cache": true, "psow": true, "nolock": true, "immutable": true, "modeof": true, "_pragma": true, "_txlock": true, "_timefmt": true}
)

// nearMiss reports whether key looks like a misspelling of ours: the same
// letters in another case, or one edit (two for a long name) away, an edit
// being a letter inserted, dropped, replaced or swapped with its neighbour.
func nearMiss(key, ours string) bool {
	if strings.EqualFold(key, ours) {
		return true
	}
	a, b := []rune(strings.ToLower(key)), []rune(ours)
	limit := 1
	if len(b) > 5 {
		limit = 2
	}
	if d := len(a) - len(b); d > limit || -d > limit {
		return false
	}
	// Optimal string alignment distance, three rows.
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)] <= limit
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// ParseSize parses a byte size: a whole number of bytes ("1048576") or a
// number with a unit, binary (KiB, MiB, GiB, TiB; K, M, G, T alone are
// binary too) or decimal (KB, MB, GB, TB), in any case: "64MiB", "1.5GiB",
// "500MB".
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" || strings.ContainsAny(t, "einx+-") {
		return 0, fmt.Errorf("size %q: want bytes or a number with a unit, like 64MiB, 1GiB or 500MB", s)
	}
	n := f * float64(mult)
	if n < 1 || n > 1<<62 {
		return 0, fmt.Errorf("size %q: out of range (want at least 1 byte)", s)
	}
	return int64(n), nil
}
