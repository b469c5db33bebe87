package proc

import (
	"errors"
	"fmt"
	"os/exec"
	"testing"
)

func TestOnFreePortsRetriesTakenPorts(t *testing.T) {
	var seen [][]int
	err := OnFreePorts(2, func(ports []int) error {
		seen = append(seen, ports)
		if len(seen) < 3 {
			return fmt.Errorf("bind: %w", ErrPortInUse)
		}
		return nil
	})
	if err != nil || len(seen) != 3 {
		t.Fatalf("OnFreePorts: %v after %d calls, want success on the third", err, len(seen))
	}
	for _, ports := range seen {
		if len(ports) != 2 || ports[0] == ports[1] || ports[0] == 0 {
			t.Fatalf("ports %v: want two distinct ports", ports)
		}
	}
	calls := 0
	err = OnFreePorts(1, func([]int) error { calls++; return ErrPortInUse })
	if !errors.Is(err, ErrPortInUse) || calls != portAttempts {
		t.Fatalf("always in use: %v after %d calls, want ErrPortInUse after %d", err, calls, portAttempts)
	}
}

func TestProcessKill(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command")
	}
	p, err := Start(sleep, []string{"60"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Alive() {
		t.Fatal("sleep 60 exited at once")
	}
	p.Kill()
	p.Kill() // twice is harmless
	if p.Alive() || p.State() == nil {
		t.Fatal("process still running after Kill")
	}
}
