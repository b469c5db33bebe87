package proc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"

	"github.com/ltxvfs/ltxvfs/internal/syncbuf"
)

// Process is a server process started by a test or the harness.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	out    *syncbuf.Buffer
}

// Start starts bin with args and env (the whole environment), its output
// kept for Output.
func Start(bin string, args, env []string) (*Process, error) {
	return StartStdout(bin, args, env, nil)
}

// StartStdout is Start with the process's standard output given to
// stdout, when not nil (a protocol its parent reads); Output then keeps
// its standard error only.
func StartStdout(bin string, args, env []string, stdout io.Writer) (*Process, error) {
	p := &Process{exited: make(chan struct{}), out: &syncbuf.Buffer{}}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = sysProcAttr()
	p.cmd = cmd

	// The parent-death signal fires when the thread that started the child
	// ends, not the process: keep that thread for the child's lifetime.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(p.exited)
			return
		}
		started <- nil
		cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return p, nil
}

// Signal sends sig to the process (SIGTERM, for a graceful stop).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// State describes how the process exited (nil while it runs).
func (p *Process) State() *os.ProcessState { return p.cmd.ProcessState }

// Output is what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// Kill kills the process and waits for it; it may be called again.
func (p *Process) Kill() {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// Alive reports whether the process still runs.
func (p *Process) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// ErrPortInUse is what a start function returns when its server could not
// bind a port OnFreePorts gave it.
var ErrPortInUse = errors.New("port in use")

// portAttempts bounds the starts on new ports: another process may take a
// free port between our probe and the server's bind.
const portAttempts = 5

// OnFreePorts calls start with n distinct free loopback ports, and again
// with new ones while it fails with ErrPortInUse.
func OnFreePorts(n int, start func(ports []int) error) error {
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(n)
		if err != nil {
			return fmt.Errorf("find a free port: %w", err)
		}
		err = start(ports)
		if !errors.Is(err, ErrPortInUse) || attempt == portAttempts {
			return err
		}
	}
}

// FreePort picks a port the kernel gives free (for a server that does not
// fit OnFreePorts' retry).
func FreePort() (int, error) {
	ports, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// freePorts picks n ports the kernel gives free, all held until the last
// is picked so that they differ.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
