package wrap_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// allFaults turns on every fault, as the reliability tests do.
var allFaults = wrap.Behaviour{
	ErrorRate: 0.1, AmbiguousRate: 0.05, SlowRate: 0.1, SlowDelay: time.Millisecond,
	TruncateRate: 0.1, ShortRate: 0.1,
}

func TestFaultyContract(t *testing.T) {
	// Latency on; faults configured but switched off: the wrapper must then
	// be a correct client.
	b := allFaults
	b.FirstByte = time.Millisecond
	b.Bandwidth = 50 << 20
	storagetest.RunContract(t, func(t *testing.T) storage.Client {
		f := wrap.NewFaulty(file.New(t.TempDir()), wrap.Uniform(1, b))
		f.SetFaults(false)
		t.Cleanup(func() {
			if got := f.Injected(); got.Total() != 0 {
				t.Errorf("faults switched off, yet injected %+v", got)
			}
		})
		return f
	})
}

// outcome runs a fixed sequence of calls and describes what each one saw.
func outcomes(t *testing.T, seed uint64) ([]string, wrap.FaultCounts) {
	t.Helper()
	ctx := context.Background()
	base := file.New(t.TempDir())
	files := storagetest.History(t, 4)
	for _, f := range files {
		storagetest.MustWrite(t, base, f)
	}
	fc := wrap.NewFaulty(base, wrap.Uniform(seed, wrap.Behaviour{ErrorRate: 0.15, AmbiguousRate: 0.1, TruncateRate: 0.15, ShortRate: 0.15}))
	var out []string
	for i := range 150 {
		f := files[i%len(files)]
		var desc string
		switch i % 5 {
		case 0:
			infos, err := storage.ListLevel(ctx, fc, f.Level, 0, false)
			desc = fmt.Sprintf("list %d files, %v", len(infos), errClass(err))
		case 1, 2:
			size := int64(0)
			if i%5 == 2 {
				size = int64(len(f.Data)) / 2
			}
			n, err := readSome(ctx, fc, f, 0, size)
			desc = fmt.Sprintf("read %d bytes, %v", n, errClass(err))
		case 3:
			_, err := fc.WriteLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, bytes.NewReader(f.Data))
			desc = fmt.Sprintf("write %v", errClass(err))
		case 4:
			err := fc.DeleteLTXFiles(ctx, []*ltx.FileInfo{{Level: 7, MinTXID: 1, MaxTXID: 1}})
			desc = fmt.Sprintf("delete %v", errClass(err))
		}
		out = append(out, desc)
	}
	return out, fc.Injected()
}

func TestFaultyIsDeterministic(t *testing.T) {
	a, ca := outcomes(t, 42)
	b, cb := outcomes(t, 42)
	if ca != cb {
		t.Fatalf("same seed, different fault counts: %+v vs %+v", ca, cb)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, call %d differs: %q vs %q", i, a[i], b[i])
		}
	}
	if ca.Errors == 0 || ca.Ambiguous == 0 || ca.Truncated == 0 || ca.Short == 0 {
		t.Fatalf("150 calls at 10-15%% rates injected too few kinds of fault: %+v", ca)
	}
	c, _ := outcomes(t, 43)
	if strings.Join(a, "\n") == strings.Join(c, "\n") {
		t.Fatal("seeds 42 and 43 injected the same faults in the same places")
	}
}

func TestFaultyErrorRate(t *testing.T) {
	ctx := context.Background()
	fc := wrap.NewFaulty(file.New(t.TempDir()), wrap.FaultyConfig{Seed: 7, List: wrap.Behaviour{ErrorRate: 0.1}})
	const calls = 2000
	failed := 0
	for range calls {
		_, err := storage.ListLevel(ctx, fc, 0, 0, false)
		var se *wrap.StatusError
		switch {
		case err == nil:
		case errors.As(err, &se) && se.StatusCode >= 500 && se.RetryableError():
			failed++
		default:
			t.Fatalf("list failed with %v, want a retryable *wrap.StatusError", err)
		}
	}
	// Binomial(2000, 0.1): mean 200, sd 13.4; the bounds are 4 sd wide and
	// the seed is fixed, so this never flakes.
	if failed < 145 || failed > 255 {
		t.Fatalf("%d of %d calls failed at an error rate of 10%%", failed, calls)
	}
	if got := fc.Injected(); got.Errors != int64(failed) || got.Total() != int64(failed) {
		t.Fatalf("observed %d errors, counters say %+v", failed, got)
	}
}

func TestFaultyTruncatedBodies(t *testing.T) {
	ctx := context.Background()
	base := file.New(t.TempDir())
	f := storagetest.History(t, 1)[0]
	storagetest.MustWrite(t, base, f)
	n := int64(len(f.Data))

	for _, tc := range []struct {
		name string
		b    wrap.Behaviour
	}{
		{"Reset", wrap.Behaviour{TruncateRate: 1}},
		{"CleanEOF", wrap.Behaviour{ShortRate: 1}},
	} {
		t.Run(tc.name+"Ranged", func(t *testing.T) {
			fc := wrap.NewFaulty(base, wrap.FaultyConfig{Seed: 3, Open: tc.b})
			for i := range 20 {
				got, err := readSome(ctx, fc, f, 5, n-5)
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("read %d: a cut ranged body gave %d of %d bytes and %v, want io.ErrUnexpectedEOF", i, got, n-5, err)
				}
				if got >= n-5 {
					t.Fatalf("read %d: a cut body delivered all %d bytes", i, got)
				}
			}
			if got := fc.Injected(); got.Truncated+got.Short != 20 {
				t.Fatalf("20 cut bodies, counters say %+v", got)
			}
		})
	}

	t.Run("ResetOpenEnded", func(t *testing.T) {
		fc := wrap.NewFaulty(base, wrap.FaultyConfig{Seed: 4, Open: wrap.Behaviour{TruncateRate: 1}})
		got, err := readSome(ctx, fc, f, 0, 0)
		if !errors.Is(err, io.ErrUnexpectedEOF) || got >= n {
			t.Fatalf("open-ended read cut with a reset: %d of %d bytes, %v", got, n, err)
		}
	})

	t.Run("CleanEOFOpenEnded", func(t *testing.T) {
		// The nasty case: nothing in the transport says the body is short.
		fc := wrap.NewFaulty(base, wrap.FaultyConfig{Seed: 5, Open: wrap.Behaviour{ShortRate: 1}})
		rc, err := fc.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("a clean early EOF surfaced as %v", err)
		}
		if int64(len(data)) >= n {
			t.Fatalf("body not cut: %d of %d bytes", len(data), n)
		}
		if err := ltx.NewDecoder(bytes.NewReader(data)).Verify(); err == nil {
			t.Fatalf("the LTX decoder accepted %d of %d bytes", len(data), n)
		}
		if got := fc.Injected(); got.Short != 1 {
			t.Fatalf("counters %+v, want 1 short body", got)
		}
	})
}

func TestFaultyCancelInterruptsDelays(t *testing.T) {
	base := file.New(t.TempDir())
	f := storagetest.History(t, 1)[0]
	storagetest.MustWrite(t, base, f)

	t.Run("FirstByte", func(t *testing.T) {
		fc := wrap.NewFaulty(base, wrap.Uniform(1, wrap.Behaviour{FirstByte: time.Hour}))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(10*time.Millisecond, cancel)
		_, err := fc.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, 0, 0)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("open cancelled during its first-byte delay: %v, want context.Canceled", err)
		}
	})

	t.Run("Slow", func(t *testing.T) {
		fc := wrap.NewFaulty(base, wrap.Uniform(1, wrap.Behaviour{SlowRate: 1, SlowDelay: time.Hour}))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(10*time.Millisecond, cancel)
		_, err := storage.ListLevel(ctx, fc, 0, 0, false)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("list cancelled during a slow response: %v, want context.Canceled", err)
		}
	})

	t.Run("Bandwidth", func(t *testing.T) {
		fc := wrap.NewFaulty(base, wrap.FaultyConfig{Open: wrap.Behaviour{Bandwidth: 1}}) // a byte a second
		ctx, cancel := context.WithCancel(context.Background())
		rc, err := fc.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		time.AfterFunc(10*time.Millisecond, cancel)
		_, err = io.ReadAll(rc)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("body cancelled while paced: %v, want context.Canceled", err)
		}
	})

	t.Run("Upload", func(t *testing.T) {
		dir := t.TempDir()
		fc := wrap.NewFaulty(file.New(dir), wrap.FaultyConfig{Write: wrap.Behaviour{Bandwidth: 1}})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(10*time.Millisecond, cancel)
		_, err := fc.WriteLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, bytes.NewReader(f.Data))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("upload cancelled while paced: %v, want context.Canceled", err)
		}
		if infos, _ := storage.ListLevel(context.Background(), file.New(dir), f.Level, 0, false); len(infos) != 0 {
			t.Fatalf("a cancelled upload left %d files listed", len(infos))
		}
	})
}

func TestFaultyWrites(t *testing.T) {
	ctx := context.Background()
	f := storagetest.History(t, 1)[0]

	for _, tc := range []struct {
		name    string
		b       wrap.Behaviour
		landed  bool // the file is there after the failure
		counter func(wrap.FaultCounts) int64
	}{
		{"FailBefore", wrap.Behaviour{ErrorRate: 1}, false, func(c wrap.FaultCounts) int64 { return c.Errors }},
		{"FailAfter", wrap.Behaviour{AmbiguousRate: 1}, true, func(c wrap.FaultCounts) int64 { return c.Ambiguous }},
		{"BrokenUpload", wrap.Behaviour{TruncateRate: 1}, false, func(c wrap.FaultCounts) int64 { return c.Truncated }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := file.New(t.TempDir())
			fc := wrap.NewFaulty(base, wrap.FaultyConfig{Seed: 9, Write: tc.b})
			_, err := fc.WriteLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, bytes.NewReader(f.Data))
			if err == nil {
				t.Fatal("the write succeeded")
			}
			if got := tc.counter(fc.Injected()); got != 1 {
				t.Fatalf("counters %+v after one %s", fc.Injected(), tc.name)
			}
			infos, err := storage.ListLevel(ctx, base, f.Level, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.landed {
				if len(infos) != 0 {
					t.Fatalf("a failed write left %d files listed", len(infos))
				}
				if _, err := base.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, 0, 0); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a failed write left a file: %v", err)
				}
				return
			}
			if len(infos) != 1 || infos[0].Size != int64(len(f.Data)) {
				t.Fatalf("an ambiguous write: listed %v, want the whole file", infos)
			}
			if got := storagetest.ReadRange(t, base, f.Level, f.MinTXID, f.MaxTXID, 0, 0); !bytes.Equal(got, f.Data) {
				t.Fatal("an ambiguous write left different bytes")
			}
		})
	}
}

func TestFaultyListingCutShort(t *testing.T) {
	ctx := context.Background()
	base := file.New(t.TempDir())
	for _, f := range storagetest.History(t, 5) {
		storagetest.MustWrite(t, base, f)
	}
	fc := wrap.NewFaulty(base, wrap.FaultyConfig{Seed: 11, List: wrap.Behaviour{TruncateRate: 1}})
	for i := range 10 {
		infos, err := storage.ListLevel(ctx, fc, 0, 0, false)
		var se *wrap.StatusError
		if !errors.As(err, &se) {
			t.Fatalf("listing %d: %d files and %v, want a *wrap.StatusError, never a silently short listing", i, len(infos), err)
		}
		infos, err = storage.ListAll(ctx, fc, false)
		if !errors.As(err, &se) {
			t.Fatalf("listing %d of every level: %d files and %v, want a *wrap.StatusError, never a silently short listing", i, len(infos), err)
		}
	}
	if got := fc.Injected().Truncated; got != 20 {
		t.Fatalf("%d listings cut short, want 20", got)
	}
}

func TestFaultySwitchOff(t *testing.T) {
	ctx := context.Background()
	fc := wrap.NewFaulty(file.New(t.TempDir()), wrap.Uniform(1, wrap.Behaviour{ErrorRate: 1}))
	if _, err := storage.ListLevel(ctx, fc, 0, 0, false); err == nil {
		t.Fatal("an error rate of 1 let a list through")
	}
	fc.SetFaults(false)
	for i := range 20 {
		if _, err := storage.ListLevel(ctx, fc, 0, 0, false); err != nil {
			t.Fatalf("list %d with faults off: %v", i, err)
		}
	}
	fc.SetFaults(true)
	if _, err := storage.ListLevel(ctx, fc, 0, 0, false); err == nil {
		t.Fatal("faults switched back on let a list through")
	}
	fc.SetBehaviour(wrap.OpList, wrap.Behaviour{})
	if _, err := storage.ListLevel(ctx, fc, 0, 0, false); err != nil {
		t.Fatalf("list after its faults were configured away: %v", err)
	}
	if got := fc.Injected(); got.Errors != 2 || got.Total() != 2 {
		t.Fatalf("counters %+v, want 2 errors", got)
	}
}

func readSome(ctx context.Context, c storage.Client, f storagetest.File, off, size int64) (int64, error) {
	rc, err := c.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, off, size)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

// errClass names an error by what a caller can tell of it.
func errClass(err error) string {
	var se *wrap.StatusError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &se):
		return fmt.Sprintf("status %d", se.StatusCode)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	default:
		return "error: " + err.Error()
	}
}
