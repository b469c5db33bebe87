package vfs

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/fuzzseed"
	"github.com/ltxvfs/ltxvfs/internal/token"
	"github.com/ltxvfs/ltxvfs/storage"
)

// FuzzParams feeds arbitrary URI parameters (a query string, as SQLite
// splits a database filename's parameters) to the DSN parsing. Properties:
// never a panic; an error names a parameter that was given and, for a
// parameter given once, its value; a result is a valid configuration, and
// no parameter that looks like one of ours (txdi=, TXID=) was ignored.
func FuzzParams(f *testing.F) {
	fuzzseed.Write(f, []fuzzseed.Seed{
		fuzzseed.New("replica-file", "replica=%2Fabs%2Fdir"),
		fuzzseed.New("replica-s3", "replica=s3%3A%2F%2Fbucket%2Fprefix%3Fendpoint%3Dlocalhost%3A9000&poll=250ms&pagecache=1GiB"),
		fuzzseed.New("replica-empty", "replica="),
		fuzzseed.New("txid-decimal", "replica=x&txid=42"),
		fuzzseed.New("txid-hex", "txid=000000000000002a"),
		fuzzseed.New("txid-bad", "txid=abc"),
		fuzzseed.New("txid-zero", "txid=0"),
		fuzzseed.New("txid-huge", "txid=18446744073709551616"),
		fuzzseed.New("txid-twice", "txid=1&txid=2"),
		fuzzseed.New("time-rfc3339", "time=2025-01-02T15:04:05.123%2B02:00"),
		fuzzseed.New("time-relative", "time=-5m"),
		fuzzseed.New("time-future", "time=%2B5m"),
		fuzzseed.New("time-garbage", "time=yesterday"),
		fuzzseed.New("txid-and-time", "txid=1&time=-5m"),
		fuzzseed.New("poll-negative", "poll=-1s"),
		fuzzseed.New("poll-zero", "poll=0"),
		fuzzseed.New("pagecache-units", "pagecache=1.5GiB"),
		fuzzseed.New("pagecache-negative", "pagecache=-5"),
		fuzzseed.New("pagecache-huge", "pagecache=99999999TiB"),
		fuzzseed.New("immutable", "immutable=1"),
		fuzzseed.New("nolock-off", "nolock=0&mode=ro&cache=private"),
		fuzzseed.New("typo", "replica=x&txdi=4"),
		fuzzseed.New("typo-case", "replica=x&TXID=4"),
		fuzzseed.New("typo-with-secret", "replcia=s3%3A%2F%2Fk%3As3cr3t%40b%2Fp"),
		fuzzseed.New("time-with-secret", "replica=x&time=s3%3A%2F%2Fk%3As3cr3t%40b%2Fp"),
		fuzzseed.New("time-empty-userinfo", "time=//@"),
		fuzzseed.New("wait-token", "replica=x&wait=ltx1%3A00000000000004d2%3A1718000000123&wait_timeout=2s"),
		fuzzseed.New("wait-garbage", "wait=garbage"),
		fuzzseed.New("wait-version", "wait=ltx2%3A00000000000004d2%3A1"),
		fuzzseed.New("wait-with-secret", "wait=s3%3A%2F%2Fk%3As3cr3t%40b%2Fp"),
		fuzzseed.New("wait-timeout-bad", "wait_timeout=soon"),
		fuzzseed.New("wait-timeout-zero", "wait_timeout=0s"),
		fuzzseed.New("wait-typo", "wiat=x"),
		fuzzseed.New("sqlite-params", "vfs=ltx&mode=ro&cache=shared&psow=1&_pragma=busy_timeout(5000)&_txlock=deferred&_timefmt=auto&modeof=x"),
	})
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, query string) {
		q, _ := url.ParseQuery(query) // what parsed, as SQLite would pass it
		p, err := parseParams(q, now)
		if err != nil {
			msg := err.Error()
			for key, vs := range q {
				if !strings.Contains(msg, key) {
					continue
				}
				// A value that holds a URL's user information is shown
				// redacted.
				shown := storage.Redact(vs[0])
				if len(vs) != 1 || strings.TrimSpace(vs[0]) == "" || strings.Contains(msg, shown) || strings.Contains(msg, strconv.Quote(shown)) {
					return
				}
			}
			t.Fatalf("parameters %q: error names no parameter given with its value: %v", q, err)
		}
		if vs, ok := q["txid"]; ok && (p.txid == 0 || p.txidRaw != vs[0]) {
			t.Fatalf("txid=%q: parsed as %d (%q)", vs[0], p.txid, p.txidRaw)
		}
		if vs, ok := q["time"]; ok && (!p.hasTime || p.atRaw != vs[0] || p.txid != 0) {
			t.Fatalf("time=%q: parsed as %+v", vs[0], p)
		}
		if vs, ok := q["wait"]; ok {
			if tok, err := token.Parse(vs[0]); err != nil || !p.hasWait || p.waitRaw != vs[0] || p.wait != tok {
				t.Fatalf("wait=%q: parsed as %+v (%q), the token is %+v (%v)", vs[0], p.wait, p.waitRaw, tok, err)
			}
		}
		if _, ok := q["wait_timeout"]; ok && p.waitTimeout <= 0 {
			t.Fatalf("wait_timeout=%q: parsed as %s", q["wait_timeout"], p.waitTimeout)
		}
		if _, ok := q["poll"]; ok && p.poll <= 0 {
			t.Fatalf("poll=%q: parsed as %s", q["poll"], p.poll)
		}
		if _, ok := q["pagecache"]; ok && p.cacheMax < 1 {
			t.Fatalf("pagecache=%q: parsed as %d bytes", q["pagecache"], p.cacheMax)
		}
		if vs, ok := q["replica"]; ok && (!p.hasReplica || p.replica != vs[0] || strings.TrimSpace(vs[0]) == "") {
			t.Fatalf("replica=%q: parsed as %q", vs[0], p.replica)
		}
		for _, key := range []string{"immutable", "nolock"} {
			if vs, ok := q[key]; ok && len(vs) > 0 {
				if b, err := strconv.ParseBool(vs[0]); err != nil || b {
					t.Fatalf("%s=%s accepted", key, vs[0])
				}
			}
		}
		for key := range q {
			for _, ours := range ownParams {
				if key != ours && strings.EqualFold(key, ours) {
					t.Fatalf("parameter %s= accepted beside %s=", key, ours)
				}
			}
		}
		if p.following() != (q["txid"] == nil && q["time"] == nil) {
			t.Fatalf("parameters %q: following = %t", q, p.following())
		}
	})
}
