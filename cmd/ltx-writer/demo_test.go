package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes a few seconds")
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"demo", "-rows", "500", "-commits", "2"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	s := out.String()
	for _, want := range []string{
		"open the database", "100 warm point queries", "0 + 0    requests", // warm queries cost nothing
		"(500 orders, WAL mode)", "visible to the reader after", "median",
		"pinned   TXID 1 ", "500 orders", "502 orders",
		"new-customer-0", "new-customer-1", "L0: ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "visible to the reader after"); n != 2 {
		t.Errorf("%d commits followed, want 2", n)
	}
	// The temp directory is gone.
	m := regexp.MustCompile(`primary  (\S+)app\.db`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no primary path in the output:\n%s", s)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("the demo left %s behind: %v", m[1], err)
	}
	if errb.Len() != 0 {
		t.Errorf("stderr: %s", errb.String())
	}
}

func TestDemoKeepsItsDir(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes a few seconds")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"demo", "-dir", dir, "-rows", "100", "-commits", "1"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "replica", "ltx", "0")); err != nil {
		t.Fatalf("replica not kept in -dir: %v", err)
	}
	// The replica it leaves can be queried.
	code, qout, qerr := queryCLI(t, "-replica", filepath.Join(dir, "replica"), "SELECT count(*) AS n FROM orders")
	if code != 0 || !strings.Contains(qout, "101") {
		t.Fatalf("query the demo's replica: exit %d, %q, %q", code, qout, qerr)
	}
	// A second run refuses to write over the first.
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"demo", "-dir", dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "exists") {
		t.Fatalf("demo into a used -dir: exit %d, %q", code, errb.String())
	}
}

func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{{"-rows", "0"}, {"-commits", "-1"}, {"extra"}, {"-bogus"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), append([]string{"demo"}, args...), &out, &errb); code != 2 {
			t.Errorf("demo %v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}
