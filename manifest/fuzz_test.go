package manifest_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ltxvfs/ltxvfs/manifest"
)

// FuzzDecode feeds arbitrary bytes to the decoders of what a reader reads
// from storage before it trusts it: a hint and a manifest. Properties:
// they never panic; they fail with ErrInvalidHint / ErrInvalid, or return
// something that encodes back to bytes that decode to the same.
func FuzzDecode(f *testing.F) {
	m := sampleManifest(f)
	mb, err := m.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mb)
	f.Add(build(f, 9, sampleFile(f)).Encode())
	f.Add(mb[:len(mb)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := manifest.DecodeHint(b); err != nil {
			if !errors.Is(err, manifest.ErrInvalidHint) {
				t.Fatalf("hint: %v does not wrap ErrInvalidHint", err)
			}
		} else if again, err := manifest.DecodeHint(h.Encode()); err != nil || again.Source() != h.Source() || len(again.Frames) != len(h.Frames) {
			t.Fatalf("a decoded hint does not round-trip: %v", err)
		}
		if m, err := manifest.Decode(b); err != nil {
			if !errors.Is(err, manifest.ErrInvalid) {
				t.Fatalf("manifest: %v does not wrap ErrInvalid", err)
			}
		} else {
			enc, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			again, err := manifest.Decode(enc)
			if err != nil || !again.SameFiles(m) || again.TXID != m.TXID || !bytes.Equal(enc, must(again.Encode())) {
				t.Fatalf("a decoded manifest does not round-trip: %v", err)
			}
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
