package testbin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/proc"
)

// installTimeout bounds a cold `go install` (MinIO takes several minutes
// on two cores, most of it compiling).
const installTimeout = 30 * time.Minute

// Tool is a server binary built from a Go module.
type Tool struct {
	// Name is the binary's name on PATH and in the cache ("versitygw").
	Name string
	// Env names a variable that gives the binary's path instead
	// ("VERSITYGW").
	Env string
	// Package is the main package to `go install`.
	Package string
	// Version is the module version to install: a release or, for
	// modules without semver releases (MinIO), a pseudo-version, pinned
	// so that every machine tests against the same server.
	Version string
	// Built is the name `go install` gives the binary when it is not Name
	// (the last element of Package).
	Built string
}

func (t Tool) String() string { return t.Name + " " + t.Version }

// Path returns the path of the binary: $Env if set, Name on PATH, or the
// cached build, installed first if missing.
func (t Tool) Path() (string, error) {
	if t.Env != "" {
		if p := os.Getenv(t.Env); p != "" {
			if err := CheckExecutable(p); err != nil {
				return "", fmt.Errorf("%s=%s: %w", t.Env, p, err)
			}
			return p, nil
		}
	}
	if p, err := exec.LookPath(t.Name); err == nil {
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find %s: no user cache directory to install it in: %w", t.Name, err)
	}
	dir := filepath.Join(cache, "ltxvfs", t.Name+"-"+t.Version)
	bin := filepath.Join(dir, t.Name)
	if CheckExecutable(bin) == nil {
		return bin, nil
	}
	if err := t.install(dir, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// install builds the tool into dir under a file lock. The build goes to a
// temp directory and is renamed into place, so nobody ever runs a
// half-written file.
func (t Tool) install(dir, bin string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("install %s: %w", t, err)
	}
	unlock, err := LockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return fmt.Errorf("install %s: lock %s: %w", t, dir, err)
	}
	defer unlock()
	if CheckExecutable(bin) == nil {
		return nil // built by another process while we waited
	}

	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("install %s: the go command is not on PATH: %w", t, err)
	}
	tmp, err := os.MkdirTemp(dir, "install-*")
	if err != nil {
		return fmt.Errorf("install %s: %w", t, err)
	}
	defer os.RemoveAll(tmp)

	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "install", t.Package+"@"+t.Version)
	cmd.Dir = tmp // outside any module, so no go.mod or go.work applies
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off", "GOFLAGS=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("install %s: go install %s@%s: %w\n%s", t.Name, t.Package, t.Version, err, Tail(out.String(), 2000))
	}
	built := t.Built
	if built == "" {
		built = filepath.Base(t.Package)
	}
	if err := os.Rename(filepath.Join(tmp, built), bin); err != nil {
		return fmt.Errorf("install %s: %w", t, err)
	}
	return nil
}

// CheckExecutable reports why p is not an executable file, if it is not
// (see proc.CheckExecutable).
func CheckExecutable(p string) error { return proc.CheckExecutable(p) }

// Tail is the end of a command's output, where the error is.
func Tail(s string, n int) string { return proc.Tail(s, n) }
