package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badInputsTried counts the bad inputs of this package's tables; the
// table logs it (-v).
var badInputsTried int

// TestBadCommandLines: every subcommand given a bad flag, value, argument,
// config file or replica exits non-zero with exactly one line on stderr,
// which names the offending input, and writes nothing to stdout.
func TestBadCommandLines(t *testing.T) {
	dir := t.TempDir()
	replica, _ := queryFixture(t)
	db := filepath.Join(dir, "app.db")
	openDB(t, db)
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("not a database\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "existing.db")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty-replica")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.db")
	newReplica := filepath.Join(dir, "new-replica")
	cfg := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rep := []string{"replicate", "-db", db, "-replica", newReplica}

	for _, tc := range []struct {
		args []string
		want []string // each must be in the one line on stderr
	}{
		// no command, unknown command
		{[]string{"replicat"}, []string{`"replicat"`}},
		{[]string{"-x"}, []string{`"-x"`}},

		// replicate
		{[]string{"replicate"}, []string{"-db and -replica are required"}},
		{[]string{"replicate", "-db", db}, []string{"-replica"}},
		{[]string{"replicate", "-replica", newReplica}, []string{"-db"}},
		{[]string{"replicate", "-db", db, "-replica", newReplica, "extra"}, []string{`"extra"`}},
		{[]string{"replicate", "-bogus"}, []string{"-bogus"}},
		{[]string{"replicate", "-sync-interval"}, []string{"-sync-interval"}},
		{append(rep, "-sync-interval", "soon"), []string{`"soon"`, "-sync-interval"}},
		{append(rep, "-sync-interval", "0s"), []string{"-sync-interval 0s"}},
		{append(rep, "-sync-interval", "-1s"), []string{"-sync-interval -1s"}},
		{append(rep, "-compaction-intervals", "30s,fast"), []string{`"fast"`}},
		{append(rep, "-compaction-intervals", "30s,-5m"), []string{`"-5m"`}},
		{append(rep, "-compaction-intervals", "1s,2s,3s,4s,5s,6s,7s,8s,9s"), []string{"9 levels"}},
		{append(rep, "-compaction-intervals", ""), []string{"-compaction-intervals"}},
		{append(rep, "-snapshot-interval", "daily"), []string{`"daily"`}},
		{append(rep, "-snapshot-retention", "forever"), []string{`"forever"`}},
		{append(rep, "-l0-retention", "-1s"), []string{"-l0-retention -1s"}},
		{append(rep, "-manifest-grace", "-1s"), []string{"-manifest-grace -1s"}},
		{append(rep, "-manifest-grace", "later"), []string{`"later"`}},
		{append(rep, "-no-manifest=perhaps"), []string{`"perhaps"`}},
		{append(rep, "-checkpoint-pages", "0"), []string{"-checkpoint-pages 0"}},
		{append(rep, "-checkpoint-pages", "many"), []string{`"many"`}},
		{append(rep, "-truncate-pages", "0"), []string{"-truncate-pages 0"}},
		{append(rep, "-truncate-pages", "-5"), []string{"-truncate-pages -5"}},
		{append(rep, "-truncate-pages", "10"), []string{"-truncate-pages 10"}},
		{append(rep, "-checkpoint-interval", "often"), []string{`"often"`}},
		{append(rep, "-checksums=maybe"), []string{`"maybe"`}},
		{append(rep, "-log-level", "loud"), []string{`"loud"`}},
		{append(rep, "-metrics-addr", "nope:abc"), []string{`"nope:abc"`}},
		{[]string{"replicate", "-db", db, "-replica", "s4://bucket/x"}, []string{`"s4"`}},
		{[]string{"replicate", "-db", db, "-replica", "s3:/bucket/x"}, []string{"s3:/bucket/x"}},
		{[]string{"replicate", "-db", db, "-replica", "s3://"}, []string{"bucket required"}},
		{[]string{"replicate", "-db", db, "-replica", "s3://b/p?endpoint="}, []string{"endpoint is empty"}},
		{[]string{"replicate", "-db", db, "-replica", "s3://b/p?regoin=us"}, []string{`"regoin"`}},
		{[]string{"replicate", "-db", db, "-replica", "s3://key:s3cr3t@b/p"}, []string{"credentials do not belong in the URL"}},
		{[]string{"replicate", "-db", db, "-replica", "s3://key:s3cr3t@b/p?regoin=x"}, []string{"credentials do not belong in the URL"}},
		{[]string{"replicate", "-db", db, "-replica", "s3://b/p?endpoint=http://key:s3cr3t@127.0.0.1:1"}, []string{"credentials do not belong in the endpoint"}},
		{[]string{"replicate", "-db", db, "-replica", "s3://b/p?endpoint=key:s3cr3t@127.0.0.1:1&regoin=x"}, []string{`"regoin"`}},
		{[]string{"replicate", "-db", db, "-replica", "file://host/x"}, []string{"file://host/x"}},
		{[]string{"replicate", "-db", text, "-replica", newReplica}, []string{text, "not a SQLite database"}},
		{[]string{"replicate", "-db", filepath.Join(dir, "missing.db"), "-replica", newReplica}, []string{"missing.db"}},
		{[]string{"replicate", "-db", dir, "-replica", newReplica}, []string{dir}},
		{[]string{"replicate", "-db", db, "-replica", text}, []string{text}},
		{[]string{"replicate", "-config", filepath.Join(dir, "none.yaml")}, []string{"none.yaml"}},
		{[]string{"replicate", "-config", "x.yaml", "-db", db}, []string{"not both"}},

		// replicate -config: the YAML file
		{[]string{"replicate", "-config", cfg("empty.yaml", "")}, []string{"empty.yaml", "empty"}},
		{[]string{"replicate", "-config", cfg("nodbs.yaml", "databases: []\n")}, []string{"nodbs.yaml", "no databases"}},
		{[]string{"replicate", "-config", cfg("unknown.yaml", "databases:\n  - path: a.db\n    replica: /r\n    sync-intervall: 1s\n")}, []string{"unknown.yaml", "sync-intervall"}},
		{[]string{"replicate", "-config", cfg("unknown-top.yaml", "databses:\n  - path: a.db\n")}, []string{"unknown-top.yaml", "databses"}},
		{[]string{"replicate", "-config", cfg("duration.yaml", "databases:\n  - path: a.db\n    replica: /r\n    sync-interval: soon\n")}, []string{"duration.yaml", `"soon"`}},
		{[]string{"replicate", "-config", cfg("intervals.yaml", "databases:\n  - path: a.db\n    replica: /r\n    compaction-intervals: [30s, fast]\n")}, []string{"intervals.yaml", `"fast"`}},
		{[]string{"replicate", "-config", cfg("pages.yaml", "databases:\n  - path: a.db\n    replica: /r\n    checkpoint-pages: many\n")}, []string{"pages.yaml", "many"}},
		{[]string{"replicate", "-config", cfg("nopath.yaml", "databases:\n  - replica: /r\n")}, []string{"nopath.yaml", "database 1 has no path"}},
		{[]string{"replicate", "-config", cfg("noreplica.yaml", "databases:\n  - path: a.db\n")}, []string{"noreplica.yaml", "a.db has no replica"}},
		{[]string{"replicate", "-config", cfg("twice.yaml", "databases:\n  - path: a.db\n    replica: /r1\n  - path: ./a.db\n    replica: /r2\n")}, []string{"twice.yaml", "listed twice"}},
		{[]string{"replicate", "-config", cfg("shared.yaml", "databases:\n  - path: a.db\n    replica: /r\n  - path: b.db\n    replica: /r\n")}, []string{"shared.yaml", "two databases"}},
		{[]string{"replicate", "-config", cfg("shared-secret.yaml", "databases:\n  - path: a.db\n    replica: s3://k:s3cr3t@b/p\n  - path: b.db\n    replica: s3://k:s3cr3t@b/p\n")}, []string{"shared-secret.yaml", "two databases"}},
		{[]string{"replicate", "-config", cfg("syntax.yaml", "databases: [oops")}, []string{"syntax.yaml"}},
		{[]string{"replicate", "-config", cfg("tabs.yaml", "databases:\n\t- path: a.db\n")}, []string{"tabs.yaml"}},
		{[]string{"replicate", "-config", cfg("badurl.yaml", "databases:\n  - path: app.db\n    replica: sftp://host/x\n")}, []string{"sftp://host/x"}},
		{[]string{"replicate", "-config", cfg("zero-sync.yaml", "databases:\n  - path: app.db\n    replica: "+newReplica+"\n    sync-interval: -1s\n")}, []string{"zero-sync.yaml", "sync-interval"}},
		{[]string{"replicate", "-config", cfg("bad-pages.yaml", "databases:\n  - path: app.db\n    replica: "+newReplica+"\n    checkpoint-pages: -3\n")}, []string{"bad-pages.yaml", "checkpoint-pages"}},
		{[]string{"replicate", "-config", cfg("truncate-below.yaml", "databases:\n  - path: app.db\n    replica: "+newReplica+"\n    truncate-pages: 500\n")}, []string{"truncate-below.yaml", "truncate-pages 500", "checkpoint-pages 1000"}},
		{[]string{"replicate", "-checkpoint-pages", "3000", "-config", cfg("truncate-below-flag.yaml", "databases:\n  - path: app.db\n    replica: "+newReplica+"\n    truncate-pages: 2000\n")}, []string{"truncate-below-flag.yaml", "truncate-pages 2000", "checkpoint-pages 3000"}},
		{[]string{"replicate", "-config", cfg("bad-grace.yaml", "databases:\n  - path: app.db\n    replica: "+newReplica+"\n    manifest-grace: -5m\n")}, []string{"bad-grace.yaml", "manifest-grace -5m"}},
		{[]string{"replicate", "-config", cfg("bad-no-manifest.yaml", "databases:\n  - path: app.db\n    replica: "+newReplica+"\n    no-manifest: sometimes\n")}, []string{"bad-no-manifest.yaml", "sometimes"}},
		{[]string{"replicate", "-config", cfg("bad-levels.yaml", "databases:\n  - path: app.db\n    replica: "+newReplica+"\n    compaction-intervals: [30s, -5m]\n")}, []string{"bad-levels.yaml", "compaction-intervals"}},

		// replicate -config: Litestream's format
		{[]string{"replicate", "-config", cfg("ls-type.yml", "dbs:\n  - path: "+db+"\n    replica:\n      type: sftp\n      host: h:22\n      password: s3cr3t\n")}, []string{"ls-type.yml", `replica type "sftp" is not supported`, "database " + db}},
		{[]string{"replicate", "-config", cfg("ls-gcs.yml", "dbs:\n  - path: "+db+"\n    replica:\n      url: gs://bucket/db\n")}, []string{"ls-gcs.yml", `replica type "gs" is not supported`, "database " + db}},
		{[]string{"replicate", "-config", cfg("ls-nodbpath.yml", "dbs:\n  - replica:\n      path: "+newReplica+"\n")}, []string{"ls-nodbpath.yml", "line 2: dbs[0]: missing path"}},
		{[]string{"replicate", "-config", cfg("ls-noreplicapath.yml", "dbs:\n  - path: "+db+"\n    replica:\n      type: file\n")}, []string{"ls-noreplicapath.yml", "database " + db, "file replica: missing path"}},
		{[]string{"replicate", "-config", cfg("ls-unset.yml", "dbs:\n  - path: ${LTX_TEST_UNSET_DIR}/app.db\n    replica:\n      path: "+newReplica+"\n")}, []string{"ls-unset.yml", "line 2 (path)", "${LTX_TEST_UNSET_DIR} is not set", "-no-expand-env"}},
		{[]string{"replicate", "-no-expand-env", "-config", cfg("ls-unset.yml", "dbs:\n  - path: ${LTX_TEST_UNSET_DIR}/app.db\n    replica:\n      path: "+newReplica+"\n")}, []string{"${LTX_TEST_UNSET_DIR}/app.db"}},
		{[]string{"replicate", "-config", cfg("ls-unset-secret.yml", "dbs:\n  - path: "+db+"\n    replica:\n      url: s3://b/db\n      access-key-id: AKIA\n      secret-access-key: s3cr3t$x\n")}, []string{"ls-unset-secret.yml", "line 6 (secret-access-key): refers to an environment variable that is not set"}},
		{[]string{"replicate", "-config", cfg("ls-sse.yml", "dbs:\n  - path: "+db+"\n    replica:\n      url: s3://b/db\n      sse-customer-key: s3cr3t\n")}, []string{"ls-sse.yml", "line 5: dbs[0].replica.sse-customer-key: not supported"}},
		{[]string{"replicate", "-config", cfg("ls-typo.yml", "dbs:\n  - path: "+db+"\n    replica:\n      path: "+newReplica+"\n      sync-intervall: 1s\n")}, []string{"ls-typo.yml", "line 5: dbs[0].replica.sync-intervall: unknown key"}},
		{[]string{"replicate", "-config", cfg("ls-exec.yml", "exec: myapp\ndbs:\n  - path: "+db+"\n    replica:\n      path: "+newReplica+"\n")}, []string{"ls-exec.yml", "line 1: exec: not supported"}},
		{[]string{"replicate", "-config", cfg("ls-replicas.yml", "dbs:\n  - path: "+db+"\n    replicas:\n      - path: /r1\n      - path: /r2\n")}, []string{"ls-replicas.yml", "2 replicas"}},
		{[]string{"replicate", "-config", cfg("ls-loglevel.yml", "logging:\n  level: loud\ndbs:\n  - path: "+db+"\n    replica:\n      path: "+newReplica+"\n")}, []string{"ls-loglevel.yml", `logging.level "loud"`}},
		{[]string{"replicate", "-config", cfg("ls-empty.yml", "addr: ':0'\n")}, []string{"ls-empty.yml", "no databases listed under dbs"}},

		// restore
		{[]string{"restore"}, []string{"-replica and -o are required"}},
		{[]string{"restore", "-replica", replica}, []string{"-o"}},
		{[]string{"restore", "-o", out}, []string{"-replica"}},
		{[]string{"restore", "-replica", replica, "-o", out, "extra"}, []string{`"extra"`}},
		{[]string{"restore", "-bogus"}, []string{"-bogus"}},
		{[]string{"restore", "-replica", replica, "-o", out, "-txid", "abc"}, []string{`"abc"`}},
		{[]string{"restore", "-replica", replica, "-o", out, "-txid", "0"}, []string{`"0"`}},
		{[]string{"restore", "-replica", replica, "-o", out, "-txid", "18446744073709551616"}, []string{`"18446744073709551616"`}},
		{[]string{"restore", "-replica", replica, "-o", out, "-txid", "999999"}, []string{"999999", "beyond"}},
		{[]string{"restore", "-replica", replica, "-o", out, "-time", "yesterday"}, []string{`"yesterday"`}},
		{[]string{"restore", "-replica", replica, "-o", out, "-time", "+5m"}, []string{`"+5m"`}},
		{[]string{"restore", "-replica", replica, "-o", out, "-time", "2001-01-01T00:00:00Z"}, []string{"2001-01-01T00:00:00Z"}},
		{[]string{"restore", "-replica", replica, "-o", out, "-txid", "1", "-time", "-5m"}, []string{"not both"}},
		{[]string{"restore", "-replica", replica, "-o", existing}, []string{existing, "-f"}},
		{[]string{"restore", "-replica", replica, "-o", dir}, []string{dir, "directory"}},
		{[]string{"restore", "-replica", replica, "-o", filepath.Join(dir, "no", "such", "x.db")}, []string{filepath.Join(dir, "no", "such")}},
		{[]string{"restore", "-replica", empty, "-o", out}, []string{empty, "no LTX files"}},
		{[]string{"restore", "-replica", filepath.Join(dir, "nowhere"), "-o", out}, []string{"nowhere"}},
		{[]string{"restore", "-replica", "gs://bucket", "-o", out}, []string{`"gs"`}},
		{[]string{"restore", "-replica", "s3://key:s3cr3t@b/p", "-o", out}, []string{"credentials"}},

		// ls
		{[]string{"ls"}, []string{"-replica is required"}},
		{[]string{"ls", "-replica", replica, "extra"}, []string{`"extra"`}},
		{[]string{"ls", "-bogus"}, []string{"-bogus"}},
		{[]string{"ls", "-replica", "gs://bucket"}, []string{`"gs"`}},
		{[]string{"ls", "-replica", "s3:bucket"}, []string{"s3:bucket"}},
		{[]string{"ls", "-replica", text}, []string{text}},
		{[]string{"ls", "-replica", "s3://b/p?endpoint=http%3A%2F%2Fkey%3As3cr3t%40127.0.0.1%3A1"}, []string{"credentials do not belong in the endpoint"}},

		// query
		{[]string{"query", "SELECT 1"}, []string{"-replica is required"}},
		{[]string{"query", "-replica", replica}, []string{"want one SQL statement"}},
		{[]string{"query", "-replica", replica, "SELECT 1", "extra"}, []string{"got 2 arguments"}},
		{[]string{"query", "-bogus", "SELECT 1"}, []string{"-bogus"}},
		{[]string{"query", "-replica", replica, "-txid", "abc", "SELECT 1"}, []string{`"abc"`}},
		{[]string{"query", "-replica", replica, "-txid", "0", "SELECT 1"}, []string{`"0"`}},
		{[]string{"query", "-replica", replica, "-txid", "999999", "SELECT 1"}, []string{"999999", "beyond the latest"}},
		{[]string{"query", "-replica", replica, "-time", "yesterday", "SELECT 1"}, []string{`"yesterday"`}},
		{[]string{"query", "-replica", replica, "-time", "2001-01-01T00:00:00Z", "SELECT 1"}, []string{"2001-01-01T00:00:00Z"}},
		{[]string{"query", "-replica", replica, "-txid", "1", "-time", "-5m", "SELECT 1"}, []string{"not both"}},
		{[]string{"query", "-replica", replica, "-format", "xml", "SELECT 1"}, []string{`"xml"`}},
		{[]string{"query", "-replica", replica, "SELECT * FROM nope"}, []string{"no such table: nope"}},
		{[]string{"query", "-replica", replica, "SELEC 1"}, []string{"SELEC"}},
		{[]string{"query", "-replica", replica, ""}, []string{`no SQL statement in ""`}},
		{[]string{"query", "-replica", replica, "/* only a comment */"}, []string{"no SQL statement", "only a comment"}},
		{[]string{"query", "-replica", replica, "DELETE FROM t"}, []string{"readonly"}},
		{[]string{"query", "-replica", replica, "ATTACH '" + filepath.Join(dir, "w.db") + "' AS w"}, []string{"w.db"}},
		{[]string{"query", "-replica", empty, "SELECT 1"}, []string{"no LTX files"}},
		{[]string{"query", "-replica", "ftp://x/y", "SELECT 1"}, []string{`unknown scheme "ftp"`}},
		{[]string{"query", "-replica", "s3://key:s3cr3t@b/p", "SELECT 1"}, []string{"credentials do not belong in the URL"}},
		{[]string{"query", "-replica", "s3://b/p?endpoint=http://key:s3cr3t@127.0.0.1:1", "SELECT 1"}, []string{"credentials do not belong in the endpoint"}},

		// demo
		{[]string{"demo", "-rows", "0"}, []string{"-rows"}},
		{[]string{"demo", "-commits", "-1"}, []string{"-commits"}},
		{[]string{"demo", "-rows", "lots"}, []string{`"lots"`}},
		{[]string{"demo", "extra"}, []string{"extra"}},
		{[]string{"demo", "-bogus"}, []string{"-bogus"}},
		{[]string{"demo", "-dir", text}, []string{text}},
	} {
		badInputsTried++
		code, stdout, stderr := runCmd(t, tc.args...)
		if code == 0 {
			t.Errorf("%q: exit 0, want a failure", tc.args)
			continue
		}
		if stdout != "" {
			t.Errorf("%q: wrote %q to stdout", tc.args, stdout)
		}
		if lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n"); len(lines) != 1 || lines[0] == "" {
			t.Errorf("%q: stderr is %d lines, want one:\n%s", tc.args, len(lines), stderr)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: stderr %q does not say %q", tc.args, stderr, w)
			}
		}
		if strings.Contains(stderr, "s3cr3t") {
			t.Errorf("%q: stderr shows the secret: %q", tc.args, stderr)
		}
	}
	if b, err := os.ReadFile(existing); err != nil || string(b) != "keep me" {
		t.Errorf("restore over an existing file without -f changed it: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "w.db")); err == nil {
		t.Error("ATTACH through the query command created a file")
	}
	t.Logf("%d bad command lines tried", badInputsTried)
}
