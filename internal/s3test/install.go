package s3test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/testproc"
)

// Version is the versitygw release the tests run against.
const Version = "v1.8.0"

const modulePath = "github.com/versity/versitygw/cmd/versitygw"

// installTimeout bounds a cold `go install` (about two minutes on two cores,
// most of it compiling).
const installTimeout = 15 * time.Minute

// Binary returns the path of the versitygw binary: $VERSITYGW if set,
// versitygw on PATH, or the cached build, installed first if missing.
func Binary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if err := testproc.CheckExecutable(p); err != nil {
			return "", fmt.Errorf("VERSITYGW=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find versitygw: no user cache directory to install it in: %w", err)
	}
	dir := filepath.Join(cache, "ltxvfs", "versitygw-"+Version)
	bin := filepath.Join(dir, "versitygw")
	if testproc.CheckExecutable(bin) == nil {
		return bin, nil
	}
	if err := install(dir, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// install builds versitygw into dir. Test binaries of several packages run
// at once: the first to take the lock builds, the others wait and find the
// binary done. The build goes to a temp directory and is renamed into place,
// so nobody ever runs a half-written file.
func install(dir, bin string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("install versitygw: %w", err)
	}
	unlock, err := testproc.LockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return fmt.Errorf("install versitygw: lock %s: %w", dir, err)
	}
	defer unlock()
	if testproc.CheckExecutable(bin) == nil {
		return nil // built by another process while we waited
	}

	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("install versitygw %s: the go command is not on PATH: %w", Version, err)
	}
	tmp, err := os.MkdirTemp(dir, "install-*")
	if err != nil {
		return fmt.Errorf("install versitygw: %w", err)
	}
	defer os.RemoveAll(tmp)

	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "install", modulePath+"@"+Version)
	cmd.Dir = tmp // outside any module, so no go.mod or go.work applies
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off", "GOFLAGS=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("install versitygw: go install %s@%s: %w\n%s", modulePath, Version, err, testproc.Tail(out.Bytes(), 2000))
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), bin); err != nil {
		return fmt.Errorf("install versitygw: %w", err)
	}
	return nil
}
