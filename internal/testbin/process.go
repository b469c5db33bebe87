package testbin

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/proc"
)

// The processes and ports of package proc, under the names the tests use.
type Process = proc.Process

// ErrPortInUse is what a start function returns when its server could not
// bind a port OnFreePorts gave it.
var ErrPortInUse = proc.ErrPortInUse

// Start starts bin with args and env (see proc.Start).
func Start(bin string, args, env []string) (*Process, error) { return proc.Start(bin, args, env) }

// OnFreePorts calls start with n distinct free loopback ports (see
// proc.OnFreePorts).
func OnFreePorts(n int, start func(ports []int) error) error { return proc.OnFreePorts(n, start) }

// FreePort picks a free loopback port (see proc.FreePort).
func FreePort() (int, error) { return proc.FreePort() }

// Unavailable skips the test, or fails it in CI, where a skipped test would
// pass for a tested server.
func Unavailable(tb testing.TB, what string, err error) {
	tb.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		tb.Fatalf("%s unavailable (CI is set, so this fails instead of skipping): %v", what, err)
		return
	}
	tb.Skipf("%s unavailable: %v", what, err)
}

// EnvironWithout is the environment without the variables whose names
// start with one of prefixes.
func EnvironWithout(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}
