package fuzzseed

import (
	"os"
	"path/filepath"
	"testing"
)

// The corpus files Marshal writes are read back by the fuzzing engine as
// the same values: FuzzRoundTrip's checked-in seed is one such file.
func FuzzRoundTrip(f *testing.F) {
	Write(f, []Seed{New("mixed", []byte("a\x00\xff\"b"), "é\n'", byte('\''), uint32(7), true)})
	if _, err := os.Stat(filepath.Join("testdata", "fuzz", "FuzzRoundTrip", "mixed")); err != nil {
		f.Fatalf("the seed corpus is missing: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte, s string, c byte, n uint32, ok bool) {
		if _, err := Marshal(b, s, c, n, ok); err != nil {
			t.Fatal(err)
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
