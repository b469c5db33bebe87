package vfs

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// Every bad DSN parameter fails the open with an error that names the
// parameter and the value, and reaches database/sql's caller.
func TestOpenErrorsNameTheParameter(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(x)`)
	src.exec(`INSERT INTO t VALUES (1)`)
	replica := "replica=" + url.QueryEscape(src.dir)
	empty := "replica=" + url.QueryEscape(t.TempDir())

	for _, tt := range []struct {
		dsn  string
		want []string
	}{
		{"file:app.db?vfs=ltx&" + replica + "&txid=abc", []string{`txid "abc"`}},
		{"file:app.db?vfs=ltx&" + replica + "&txid=0", []string{`txid "0"`, "start at 1"}},
		{"file:app.db?vfs=ltx&" + replica + "&txid=99", []string{"txid=99", "beyond the latest"}},
		{"file:app.db?vfs=ltx&" + replica + "&time=yesterday", []string{`time "yesterday"`, "RFC 3339"}},
		{"file:app.db?vfs=ltx&" + replica + "&time=2001-01-01T00:00:00Z", []string{"time=2001-01-01T00:00:00Z"}},
		{"file:app.db?vfs=ltx&" + replica + "&txid=1&time=-5m", []string{"txid=1", "time=-5m"}},
		{"file:app.db?vfs=ltx&" + replica + "&poll=-1s", []string{"poll=-1s"}},
		{"file:app.db?vfs=ltx&" + replica + "&poll=often", []string{"poll=often"}},
		{"file:app.db?vfs=ltx&" + replica + "&pagecache=lots", []string{"pagecache=lots"}},
		{"file:app.db?vfs=ltx&" + replica + "&pagecache=0", []string{"pagecache=0"}},
		{"file:app.db?vfs=ltx&" + replica + "&immutable=1", []string{"immutable=1"}},
		{"file:app.db?vfs=ltx&" + replica + "&nolock=1", []string{"nolock=1"}},
		{"file:app.db?vfs=ltx", []string{"replica=", `"app.db"`, "vfs.Attach"}},
		{"file:app.db?vfs=ltx&replica=", []string{"replica= is empty"}},
		{"file:app.db?vfs=ltx&replica=" + url.QueryEscape("ftp://host/dir"), []string{"replica=ftp://host/dir", `unknown scheme "ftp"`}},
		{"file:app.db?vfs=ltx&replica=" + url.QueryEscape("file://host/dir"), []string{"replica=file://host/dir"}},
		{"file:app.db?vfs=ltx&" + empty, []string{"no LTX files"}},
	} {
		db := openDB(t, tt.dsn)
		_, err := db.Exec(`SELECT * FROM t`)
		if err == nil {
			t.Errorf("%s: opened", tt.dsn)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s:\n error %q\n does not say %q", tt.dsn, err, w)
			}
		}
		db.Close()
	}
}

func TestParseParams(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	q := url.Values{"replica": {"s3://b/p"}, "time": {"-90s"}, "poll": {"250ms"}, "pagecache": {"1GiB"}, "mode": {"ro"}}
	p, err := parseParams(q, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.replica != "s3://b/p" || !p.at.Equal(now.Add(-90*time.Second)) || p.poll != 250*time.Millisecond || p.cacheMax != 1<<30 || p.following() {
		t.Fatalf("parsed %+v", p)
	}
	p, err = parseParams(url.Values{"txid": {"000000000000000a"}}, now)
	if err != nil || p.txid != 10 || p.following() {
		t.Fatalf("txid=000000000000000a: %+v, %v", p, err)
	}
	p, err = parseParams(url.Values{"immutable": {"0"}}, now)
	if err != nil || !p.following() {
		t.Fatalf("immutable=0: %+v, %v", p, err)
	}
	if _, err := parseParams(url.Values{"txid": {"1", "2"}}, now); err == nil || !strings.Contains(err.Error(), "txid given 2 times") {
		t.Fatalf("txid twice: %v", err)
	}
}
