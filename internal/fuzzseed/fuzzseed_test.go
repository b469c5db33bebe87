package fuzzseed

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The corpus files Marshal writes are read back by the fuzzing engine as
// the same values: FuzzRoundTrip's checked-in seed is one such file.
func FuzzRoundTrip(f *testing.F) {
	seed := New("mixed", []byte("a\x00\xff\"b"), "é\n'", byte('\''), uint32(7), true)
	Write(f, []Seed{seed})
	file, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzRoundTrip", "mixed"))
	if err != nil {
		f.Fatalf("the seed corpus is missing: %v", err)
	}
	want, err := Marshal(seed.Values...)
	if err != nil {
		f.Fatal(err)
	}
	if !bytes.Equal(file, want) {
		f.Fatalf("the checked-in seed is not what Marshal writes now (rerun with -fuzzseed.write):\n%s\nwant\n%s", file, want)
	}
	f.Fuzz(func(t *testing.T, b []byte, s string, c byte, n uint32, ok bool) {
		got, err := Marshal(b, s, c, n, ok)
		if err != nil {
			t.Fatal(err)
		}
		// The engine read the checked-in file, Marshal's output, back
		// as these values: they must be the seed's.
		if t.Name() == "FuzzRoundTrip/mixed" && !bytes.Equal(file, got) {
			t.Fatalf("%s: the engine read %q, %q, %q, %d, %v from the seed file: Marshal of them is\n%s\nthe file is\n%s", t.Name(), b, s, c, n, ok, got, file)
		}
	})
}

func TestMarshal(t *testing.T) {
	got, err := Marshal([]byte("a\x00"), "x\"y", byte(0), 42, uint16(9), uint32(3), int64(-1), uint64(5), false)
	if err != nil {
		t.Fatal(err)
	}
	want := "go test fuzz v1\n[]byte(\"a\\x00\")\nstring(\"x\\\"y\")\nbyte('\\x00')\nint(42)\nuint16(9)\nuint32(3)\nint64(-1)\nuint64(5)\nbool(false)\n"
	if string(got) != want {
		t.Fatalf("Marshal =\n%s\nwant\n%s", got, want)
	}
	if _, err := Marshal(1.5); err == nil {
		t.Fatal("Marshal(float64) succeeded")
	}
}
