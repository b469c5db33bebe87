package fuzzseed

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var write = flag.Bool("fuzzseed.write", false, "write the seed corpus of each fuzz target run to testdata/fuzz")

// Writing reports whether seeds are to be written in this run: the (maybe
// costly) seeds need only be made then.
func Writing() bool { return *write }

// Seed is one named entry of a corpus: the values of the fuzz function's
// arguments after *testing.T, in order.
type Seed struct {
	Name   string
	Values []any
}

// New returns the seed name with the values.
func New(name string, values ...any) Seed { return Seed{Name: name, Values: values} }

// Write replaces f's checked-in corpus, testdata/fuzz/<f.Name()>, with
// seeds, when -fuzzseed.write is given; otherwise it does nothing.
// Entries found by the fuzzer (named by a hash) are kept.
func Write(f *testing.F, seeds []Seed) {
	f.Helper()
	if !*write {
		return
	}
	dir := filepath.Join("testdata", "fuzz", f.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		b, err := Marshal(s.Values...)
		if err != nil {
			f.Fatalf("seed %s: %v", s.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.Name), b, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	f.Logf("wrote %d seeds to %s", len(seeds), dir)
}

// Marshal encodes values in the corpus file format of `go test -fuzz`
// ("go test fuzz v1", then one Go literal a line).
func Marshal(values ...any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case byte:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		case bool, int, int64, uint16, uint32, uint64:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		default:
			return nil, fmt.Errorf("value of type %T: not a fuzz argument type this package writes", v)
		}
	}
	return b.Bytes(), nil
}
