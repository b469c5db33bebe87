package nginxtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/nginx"
	"github.com/ltxvfs/ltxvfs/internal/testbin"
)

// packages are the Debian packages that bring nginx, tried in order.
var packages = []string{"nginx-light", "nginx"}

// installTimeout bounds an install, an `apt-get update` included.
const installTimeout = 10 * time.Minute

var found struct {
	once sync.Once
	bin  string
	err  error
}

// Binary returns the path of the nginx binary, installing it first if it is
// missing. The answer is kept for the life of the test process.
func Binary() (string, error) {
	found.once.Do(func() { found.bin, found.err = binary() })
	return found.bin, found.err
}

func binary() (string, error) {
	p, err := nginx.Find()
	if err == nil || nginx.FromEnv() {
		return p, err
	}
	if err := install(); err != nil {
		return "", err
	}
	return nginx.Find()
}

// install installs nginx with apt-get. Test binaries of several packages
// run at once: the first to take the lock installs, the others wait and
// find nginx there.
func install() error {
	aptGet, err := exec.LookPath("apt-get")
	if err != nil {
		return errors.New("nginx is missing and apt-get is not on PATH to install it: install nginx, or set NGINX to its binary")
	}
	if os.Geteuid() != 0 {
		return errors.New("nginx is missing and only root can install it with apt-get: install nginx (apt-get install nginx-light), or set NGINX to its binary")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	if err := os.MkdirAll(filepath.Join(cache, "ltxvfs"), 0o755); err != nil {
		return fmt.Errorf("install nginx: %w", err)
	}
	unlock, err := testbin.LockFile(filepath.Join(cache, "ltxvfs", "nginx-install.lock"))
	if err != nil {
		return fmt.Errorf("install nginx: %w", err)
	}
	defer unlock()
	if _, err := nginx.Find(); err == nil {
		return nil // installed by another process while we waited
	}

	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, aptGet, args...)
		// No prompt; and no service started by the package's scripts
		// where a policy allows it: tests start their own nginx.
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "RUNLEVEL=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %v: %w\n%s", args, err, testbin.Tail(out.String(), 2000))
		}
		return nil
	}
	installPkg := func() error {
		var errs []error
		for _, pkg := range packages {
			err := run("install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", pkg)
			if err == nil {
				return nil
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	// The package lists may be missing or stale (a package version gone
	// from the mirror): update them once and try again.
	if err := installPkg(); err != nil {
		if uerr := run("update"); uerr != nil {
			return fmt.Errorf("install nginx: %w; then %w", err, uerr)
		}
		if err := installPkg(); err != nil {
			return fmt.Errorf("install nginx: %w", err)
		}
	}
	return nil
}
