package nginx

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/ltxvfs/ltxvfs/internal/proc"
)

// sbin is where Debian's packages put nginx, which is not on a user's PATH.
const sbin = "/usr/sbin/nginx"

// Find returns the path of the nginx binary: $NGINX when set, else nginx on
// PATH, else /usr/sbin/nginx. It installs nothing.
func Find() (string, error) {
	if p := os.Getenv("NGINX"); p != "" {
		if err := proc.CheckExecutable(p); err != nil {
			return "", fmt.Errorf("NGINX=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if err := proc.CheckExecutable(sbin); err != nil {
		return "", fmt.Errorf("nginx is not on PATH nor at %s (set NGINX to its binary)", sbin)
	}
	return sbin, nil
}

// FromEnv reports whether $NGINX names the binary, which an installer must
// then leave alone.
func FromEnv() bool { return os.Getenv("NGINX") != "" }
