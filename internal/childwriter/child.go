package childwriter

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/testbin"
	"github.com/ltxvfs/ltxvfs/storage"
)

// startTimeout bounds the waits for a child to start.
const startTimeout = 60 * time.Second

// Child is a writer process.
type Child struct {
	proc *testbin.Process
	out  *stdout
}

// Write is an LTX file the child wrote (see Config.Record).
type Write struct {
	Level            int
	MinTXID, MaxTXID ltx.TXID
	Sum              string // hex SHA-256 of its bytes
}

func (w Write) String() string { return storage.FileName(w.Level, w.MinTXID, w.MaxTXID) }

// Start starts a child writer with cfg. The test's cleanup kills it.
func Start(t testing.TB, cfg Config) *Child {
	t.Helper()
	s, err := cfg.encode()
	if err != nil {
		t.Fatal(err)
	}
	out := &stdout{starting: make(chan struct{}), ready: make(chan struct{})}
	env := append(testbin.EnvironWithout(envConfig+"="), envConfig+"="+s)
	proc, err := testbin.StartStdout(os.Args[0], []string{"-test.run=^$"}, env, out)
	if err != nil {
		t.Fatal(err)
	}
	c := &Child{proc: proc, out: out}
	t.Cleanup(c.Kill)
	return c
}

// WaitStarting waits until the process runs the test's code, about to
// open the writer.
func (c *Child) WaitStarting(t testing.TB) {
	t.Helper()
	c.wait(t, c.out.starting, "start")
}

// WaitReady waits until the writer has opened the database and started.
func (c *Child) WaitReady(t testing.TB) {
	t.Helper()
	c.wait(t, c.out.ready, "start its writer")
}

func (c *Child) wait(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-c.proc.Exited():
		select {
		case <-ch: // printed, then exited
		default:
			t.Fatalf("child writer exited (%v) before it could %s: %s", c.proc.State(), what, testbin.Tail(c.Log(), 3000))
		}
	case <-time.After(startTimeout):
		c.Kill()
		t.Fatalf("child writer did not %s in %s: %s", what, startTimeout, testbin.Tail(c.Log(), 3000))
	}
}

// Running reports whether the process has not exited.
func (c *Child) Running() bool { return c.proc.Alive() }

// Exited is closed once the process has exited.
func (c *Child) Exited() <-chan struct{} { return c.proc.Exited() }

// ExitCode is the process's exit code once it exited (-1 if killed by a
// signal).
func (c *Child) ExitCode() int { return c.proc.State().ExitCode() }

// Kill sends SIGKILL and waits for the process to be gone; it may be
// called again. A stopped process is killed too.
func (c *Child) Kill() { c.proc.Kill() }

// Signal sends sig: SIGSTOP and SIGCONT to pause and wake it, SIGTERM
// for a graceful stop (a final sync).
func (c *Child) Signal(sig syscall.Signal) error { return c.proc.Signal(sig) }

// Log is what the child wrote to its standard error: the writer's log
// and, when it stops by itself, its error in one line.
func (c *Child) Log() string { return c.proc.Output() }

// Writes are the LTX files the child wrote so far, in order (with
// Config.Record).
func (c *Child) Writes(t testing.TB) []Write {
	t.Helper()
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	if c.out.bad != nil {
		t.Fatalf("child writer printed a write this package cannot read: %v", c.out.bad)
	}
	return append([]Write(nil), c.out.writes...)
}

// stdout reads the child's standard output: its protocol.
type stdout struct {
	mu       sync.Mutex
	partial  []byte
	writes   []Write
	bad      error // the first line that was not understood
	starting chan struct{}
	ready    chan struct{}
}

func (o *stdout) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		o.line(string(o.partial[:i]))
		o.partial = o.partial[i+1:]
	}
}

func (o *stdout) line(s string) {
	switch f := strings.Fields(s); {
	case s == "starting":
		close(o.starting)
	case s == "ready":
		close(o.ready)
	case len(f) == 5 && f[0] == "wrote":
		w, err := parseWrite(f[1:])
		if err != nil && o.bad == nil {
			o.bad = fmt.Errorf("%q: %w", s, err)
		}
		if err == nil {
			o.writes = append(o.writes, w)
		}
	}
}

func parseWrite(f []string) (Write, error) {
	level, err := strconv.Atoi(f[0])
	if err != nil {
		return Write{}, err
	}
	minTXID, err := ltx.ParseTXID(f[1])
	if err != nil {
		return Write{}, err
	}
	maxTXID, err := ltx.ParseTXID(f[2])
	if err != nil {
		return Write{}, err
	}
	return Write{Level: level, MinTXID: minTXID, MaxTXID: maxTXID, Sum: f[3]}, nil
}
