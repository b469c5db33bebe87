package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadCommandLines: every bad flag value, argument or path fails with
// one error line on stderr naming it (after progress lines, if any), a
// non-zero exit and nothing on stdout, before any database is built (each
// case returns at once).
func TestBadCommandLines(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("not a database\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	tried := 0
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-size", "0"}, 2, []string{"size", `"0"`}},
		{[]string{"-size", "-1GiB"}, 2, []string{`"-1GiB"`}},
		{[]string{"-size", "1.5 parsecs"}, 2, []string{`"1.5 parsecs"`}},
		{[]string{"-size", "1KiB"}, 2, []string{"-size 1.0 KiB"}},
		{[]string{"-bandwidth", "-5MB"}, 2, []string{`"-5MB"`}},
		{[]string{"-bandwidth", "fast/s"}, 2, []string{"fast"}},
		{[]string{"-cache", "0"}, 2, []string{"cache", `"0"`}},
		{[]string{"-cache", "xyz"}, 2, []string{`"xyz"`}},
		{[]string{"-latency", "abc"}, 2, []string{`"abc"`, "-latency"}},
		{[]string{"-latency", "-1ms"}, 2, []string{"-latency -1ms"}},
		{[]string{"-l0", "0"}, 2, []string{"-l0 0"}},
		{[]string{"-l0", "many"}, 2, []string{`"many"`}},
		{[]string{"-hot", "0"}, 2, []string{"-hot 0"}},
		{[]string{"-rounds", "-1"}, 2, []string{"-rounds -1"}},
		{[]string{"-range-rows", "0"}, 2, []string{"-range-rows 0"}},
		{[]string{"-commits", "0"}, 2, []string{"-commits 0"}},
		{[]string{"-lookups", "-3"}, 2, []string{"-lookups -3"}},
		{[]string{"-warm", "0s"}, 2, []string{"-warm 0s"}},
		{[]string{"-sync", "0s"}, 2, []string{"-sync 0s"}},
		{[]string{"-poll", "-1s"}, 2, []string{"-poll -1s"}},
		{[]string{"-follow", "-1s"}, 2, []string{"-follow -1s"}},
		{[]string{"-follow", "long"}, 2, []string{`"long"`, "-follow"}},
		{[]string{"-serve-http=sometimes"}, 2, []string{`"sometimes"`}},
		{[]string{"-scan-timeout", "soon"}, 2, []string{`"soon"`}},
		{[]string{"-seed", "abc"}, 2, []string{`"abc"`, "-seed"}},
		{[]string{"-quick=maybe"}, 2, []string{`"maybe"`}},
		{[]string{"-replica", "ftp://host/x"}, 2, []string{"-replica", `unknown scheme "ftp"`}},
		{[]string{"-replica", "s3:/bucket/x"}, 2, []string{"-replica", "s3:/bucket/x"}},
		{[]string{"-replica", "s3://"}, 2, []string{"-replica", "bucket required"}},
		{[]string{"-replica", "s3://key:secret@bucket/x"}, 2, []string{"-replica", "credentials"}},
		{[]string{"-nosuch"}, 2, []string{"-nosuch"}},
		{[]string{"-quick", "extra"}, 2, []string{`"extra"`}},
		{[]string{"-size", "lots"}, 2, []string{"size"}},
		{[]string{"-size", "1000"}, 2, []string{"size"}},
		{[]string{"-bandwidth", "fast"}, 2, []string{"bandwidth"}},
		{[]string{"-lookups", "0"}, 2, []string{"lookups"}},
		{[]string{"-warm", "-1s"}, 2, []string{"warm"}},
		{[]string{"-latency", "-5ms"}, 2, []string{"latency"}},
		{[]string{"-scan-timeout", "0s"}, 2, []string{"scan-timeout"}},
		{[]string{"-baseline", "/nonexistent/run.json"}, 2, []string{"baseline"}},
		{[]string{"extra"}, 2, []string{"extra"}},
		{[]string{"-quick", "-dir", filepath.Join(dir, "no", "such")}, 1, []string{filepath.Join(dir, "no", "such")}},
		{[]string{"-quick", "-dir", text}, 1, []string{text}},
		{[]string{"-quick", "-db", dir, "-dir", dir}, 1, []string{dir}},
		{[]string{"-quick", "-db", text, "-dir", dir}, 1, []string{text}},
	} {
		tried++
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d (%s)", tc.args, code, tc.code, stderr.String())
			continue
		}
		// Progress lines ("ltxvfs-bench: [0:00] copying ...") may come
		// before the error: one error line.
		var errLines []string
		for _, l := range strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n") {
			if !strings.HasPrefix(l, "ltxvfs-bench: [") {
				errLines = append(errLines, l)
			}
		}
		if len(errLines) != 1 || !strings.HasPrefix(errLines[0], "ltxvfs-bench: ") {
			t.Errorf("%q: stderr is not one error line starting with the command:\n%s", tc.args, stderr.String())
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%q: stderr %q does not say %q", tc.args, stderr.String(), w)
			}
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: wrote %q to stdout", tc.args, stdout.String())
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the failed runs left files in %s: %d entries", dir, len(entries))
	}
	t.Logf("%d bad command lines tried", tried)
}

// -h prints the usage once, on stdout.
func TestHelpOnce(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Fatalf("-h: exit %d, stderr %q", code, stderr.String())
	}
	if n := strings.Count(stdout.String(), "usage: ltxvfs-bench"); n != 1 {
		t.Fatalf("-h printed the usage %d times", n)
	}
}

// -serve-http without nginx fails at once with the reason, before any
// database is built.
func TestServeHTTPWithoutNginx(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-nginx")
	t.Setenv("NGINX", missing)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-quick", "-serve-http", "-dir", dir}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "-serve-http") || !strings.Contains(stderr.String(), "NGINX="+missing) || stdout.Len() != 0 {
		t.Fatalf("exit %d, stderr %q, stdout %q: want 1 and an error naming -serve-http and $NGINX", code, stderr.String(), stdout.String())
	}
	if strings.Contains(stderr.String(), "building") {
		t.Errorf("the database was built before nginx was looked for:\n%s", stderr.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the failed run left %d entries in %s", len(entries), dir)
	}
}
