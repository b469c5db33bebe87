package reliability

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// The crash loop runs the writer in a child process: this test binary,
// started again with these variables set.
const (
	envChild   = "LTXVFS_RELIABILITY_CHILD"
	envDB      = "LTXVFS_RELIABILITY_DB"
	envReplica = "LTXVFS_RELIABILITY_REPLICA"
	envTemp    = "LTXVFS_RELIABILITY_TEMP"
)

// childOpts make a writer that syncs, checkpoints, compacts and snapshots
// often, so that a kill lands in the middle of each.
func childOpts(temp string, log *slog.Logger) writer.Options {
	return writer.Options{
		SyncInterval:        10 * time.Millisecond,
		MinCheckpointPages:  30,
		TruncatePages:       120,
		CheckpointInterval:  100 * time.Millisecond,
		CompactionIntervals: []time.Duration{50 * time.Millisecond, 200 * time.Millisecond},
		SnapshotInterval:    300 * time.Millisecond,
		BusyTimeout:         2 * time.Second,
		TempDir:             temp,
		Logger:              log,
	}
}

func runChildWriter() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	fmt.Println("starting")
	r, err := writer.New(os.Getenv(envDB), file.New(os.Getenv(envReplica)), childOpts(os.Getenv(envTemp), log))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child writer:", err)
		return 1
	}
	if err := r.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "child writer:", err)
		return 1
	}
	fmt.Println("ready")
	<-r.Done()
	fmt.Fprintln(os.Stderr, "child writer stopped:", r.Err())
	return 1
}

// child is a writer process.
type child struct {
	cmd      *exec.Cmd
	stderr   *syncBuffer
	starting chan struct{} // closed when the process runs the test's code
	ready    chan bool     // receives once: whether the writer started
	exited   chan struct{}
	err      error // Wait's result, once exited is closed
}

// startChild starts a writer process on db and replica.
func startChild(t *testing.T, db, replica, temp string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envDB+"="+db, envReplica+"="+replica, envTemp+"="+temp)
	cmd.SysProcAttr = childSysProcAttr()
	c := &child{cmd: cmd, stderr: &syncBuffer{}, starting: make(chan struct{}), ready: make(chan bool, 1), exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() && s.Text() == "starting" {
			close(c.starting)
		}
		c.ready <- s.Scan() && s.Text() == "ready"
		io.Copy(io.Discard, out)
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() { c.kill() })
	return c
}

// waitStarting waits until the process is about to open the writer.
func (c *child) waitStarting(t *testing.T) {
	t.Helper()
	select {
	case <-c.starting:
	case <-c.exited:
		t.Fatalf("child writer exited (%v): %s", c.err, c.stderr.String())
	case <-time.After(60 * time.Second):
		c.kill()
		t.Fatalf("child writer did not start in a minute: %s", c.stderr.String())
	}
}

// waitReady waits until the writer has opened the database and started.
func (c *child) waitReady(t *testing.T) {
	t.Helper()
	select {
	case ok := <-c.ready:
		if !ok {
			c.kill()
			t.Fatalf("child writer failed to start: %s", c.stderr.String())
		}
	case <-time.After(60 * time.Second):
		c.kill()
		t.Fatalf("child writer did not start in a minute: %s", c.stderr.String())
	}
}

// running reports whether the process has not exited (by itself: a fatal
// replication error).
func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// snapshotsL0 counts the whole-database L0 files the writer logged, with
// their reasons.
func (c *child) snapshotsL0() []string {
	var reasons []string
	for _, line := range strings.Split(c.stderr.String(), "\n") {
		if !strings.Contains(line, "writing a snapshot as the next L0 file") {
			continue
		}
		if i := strings.Index(line, "reason="); i >= 0 {
			reason := line[i+len("reason="):]
			if q, err := strconv.QuotedPrefix(reason); err == nil {
				reason, _ = strconv.Unquote(q)
			} else {
				reason, _, _ = strings.Cut(reason, " ")
			}
			reasons = append(reasons, reason)
		}
	}
	return reasons
}

// tiedWithoutWAL counts the times the writer tied the database to the
// replica by its checksum, the WAL position lost.
func (c *child) tiedWithoutWAL() int {
	return strings.Count(c.stderr.String(), "the database file matches the replica; continuing")
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// tail is the end of a child's log, for failure messages.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
