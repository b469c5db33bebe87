package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress tells the operator what the harness is doing. On a terminal it
// keeps one line up to date; otherwise (a log, CI) it prints a plain line
// when each step begins and nothing in between.
type progress struct {
	w     io.Writer
	tty   bool
	start time.Time

	mu   sync.Mutex
	last time.Time
	live bool // a line is on the terminal and must be cleared
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// step begins a step of the run.
func (p *progress) step(format string, args ...any) {
	if p == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		p.show(msg)
		return
	}
	fmt.Fprintf(p.w, "ltxvfs-bench: [%s] %s\n", p.elapsed(), msg)
}

// update shows how a step is going, on a terminal only, at most ten times
// a second.
func (p *progress) update(format string, args ...any) {
	if p == nil || !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.show(fmt.Sprintf(format, args...))
}

func (p *progress) show(msg string) {
	line := fmt.Sprintf("[%s] %s", p.elapsed(), msg)
	if r := []rune(line); len(r) > 110 {
		line = string(r[:109]) + "…"
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
	p.last, p.live = time.Now(), true
}

// clear removes the progress line before the results are printed.
func (p *progress) clear() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.live = false
	}
}

func (p *progress) elapsed() string {
	d := time.Since(p.start).Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
