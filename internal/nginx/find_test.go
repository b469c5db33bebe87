package nginx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// $NGINX wins, and one that is not an executable is an error naming it,
// never a silent fallback to another nginx.
func TestFindFromEnv(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	t.Setenv("NGINX", missing)
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), "NGINX="+missing) {
		t.Fatalf("NGINX=%s: %v, want an error naming it", missing, err)
	}
	exe := filepath.Join(dir, "nginx")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NGINX", exe)
	if got, err := Find(); err != nil || got != exe {
		t.Fatalf("Find() = %q, %v; want %q", got, err, exe)
	}
	if !FromEnv() {
		t.Fatal("FromEnv() is false with NGINX set")
	}
}
