package testproc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// CI reports whether the tests run in CI (CI=true), where a test whose
// server is unavailable fails instead of being skipped.
func CI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Unavailable skips the test, or fails it in CI, where a skipped test
// would pass for a tested backend. what names the server.
func Unavailable(tb testing.TB, what string, err error) {
	tb.Helper()
	if CI() {
		tb.Fatalf("%s unavailable (CI is set, so this fails instead of skipping): %v", what, err)
		return
	}
	tb.Skipf("%s unavailable: %v", what, err)
}

// FreePort returns a loopback TCP port that was free a moment ago. Another
// process may take it before the server binds it: callers retry on
// "address already in use".
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts cmd so that the kernel kills it when the test binary dies
// (on Linux), and returns a channel closed once it has exited and been
// waited for.
func Start(cmd *exec.Cmd) (exited <-chan struct{}, err error) {
	cmd.SysProcAttr = sysProcAttr()
	done := make(chan struct{})
	// The parent-death signal fires when the thread that started the child
	// ends, not the process: keep that thread for the child's lifetime.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(done)
			return
		}
		started <- nil
		cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	return done, nil
}

// CheckExecutable reports why p is not an executable file, or nil.
func CheckExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// Tail is the end of a command's output, where the error is.
func Tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Buffer collects a child's output while the test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
