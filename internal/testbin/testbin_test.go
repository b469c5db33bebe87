package testbin

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTB records what unavailable asks of a test instead of ending it.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, format
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, format
}

func TestUnavailableFailsInCI(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{{"", false}, {"false", false}, {"true", true}, {"1", true}} {
		t.Setenv("CI", tc.ci)
		f := &fakeTB{TB: t}
		Unavailable(f, "a server", io.ErrUnexpectedEOF)
		if f.failed != tc.wantFail || f.skipped == tc.wantFail {
			t.Errorf("CI=%q: failed=%v skipped=%v, want failed=%v", tc.ci, f.failed, f.skipped, tc.wantFail)
		}
	}
}

func TestToolFromEnv(t *testing.T) {
	tool := Tool{Name: "no-such-tool-ltxvfs", Env: "LTXVFS_TESTBIN_TOOL", Package: "example.com/none", Version: "v0.0.0"}
	t.Setenv(tool.Env, filepath.Join(t.TempDir(), "missing"))
	if _, err := tool.Path(); err == nil || !strings.Contains(err.Error(), "LTXVFS_TESTBIN_TOOL=") {
		t.Fatalf("missing binary in $%s: got %v, want an error naming the variable", tool.Env, err)
	}
	exe := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(tool.Env, exe)
	if got, err := tool.Path(); err != nil || got != exe {
		t.Fatalf("Path() = %q, %v; want %q", got, err, exe)
	}
}
