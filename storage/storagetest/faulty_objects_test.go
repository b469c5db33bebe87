package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/storage"
)

// Object requests get the same faults as LTX file requests, configured
// apart from them.
func TestFaultyObjects(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("manifest "), 100)

	t.Run("CutBodies", func(t *testing.T) {
		base := NewMem()
		mustWriteObject(t, base, "manifest", data, storage.WriteOptions{})
		for _, b := range []Behaviour{{TruncateRate: 1}, {ShortRate: 1}} {
			fc := NewFaulty(base, FaultyConfig{Seed: 2, ObjectRead: b})
			for i := range 10 {
				got, _, err := storage.ReadAllObject(ctx, fc, "manifest", storage.ReadOptions{}, 1<<20)
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("%+v, read %d: %d bytes and %v, want io.ErrUnexpectedEOF", b, i, len(got), err)
				}
			}
			if got := fc.Injected(); got.Truncated+got.Short != 10 {
				t.Fatalf("%+v: 10 cut bodies, counters say %+v", b, got)
			}
		}
		// Nothing in the transport tells a clean short body: only its size.
		fc := NewFaulty(base, FaultyConfig{Seed: 2, ObjectRead: Behaviour{ShortRate: 1}})
		rc, info, err := fc.ReadObject(ctx, "manifest", storage.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || int64(len(got)) >= info.Size {
			t.Fatalf("a short body: %d of %d bytes, %v", len(got), info.Size, err)
		}
	})

	t.Run("Writes", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			b      Behaviour
			landed bool
		}{
			{"FailBefore", Behaviour{ErrorRate: 1}, false},
			{"FailAfter", Behaviour{AmbiguousRate: 1}, true},
			{"BrokenUpload", Behaviour{TruncateRate: 1}, false},
		} {
			base := NewMem()
			old := mustWriteObject(t, base, "manifest", []byte("old"), storage.WriteOptions{})
			fc := NewFaulty(base, FaultyConfig{Seed: 9, ObjectWrite: tc.b})
			if _, err := fc.WriteObject(ctx, "manifest", bytes.NewReader(data), storage.WriteOptions{IfMatch: old.ETag}); err == nil {
				t.Fatalf("%s: the write succeeded", tc.name)
			}
			if got := fc.Injected().Total(); got != 1 {
				t.Fatalf("%s: %d faults injected, want 1", tc.name, got)
			}
			got, _ := mustReadObject(t, base, "manifest", "")
			if want := map[bool]string{true: string(data), false: "old"}[tc.landed]; string(got) != want {
				t.Fatalf("%s: the object holds %d bytes, want %d", tc.name, len(got), len(want))
			}
		}
	})

	t.Run("ListsAndDeletes", func(t *testing.T) {
		base := NewMem()
		mustWriteObject(t, base, "hints/a", data, storage.WriteOptions{})
		fc := NewFaulty(base, FaultyConfig{Seed: 5, ObjectList: Behaviour{TruncateRate: 1}, ObjectDelete: Behaviour{AmbiguousRate: 1}})
		var se *StatusError
		if infos, err := fc.ListObjects(ctx, "hints"); !errors.As(err, &se) {
			t.Fatalf("a cut listing: %+v and %v, want a *StatusError", infos, err)
		}
		if err := fc.DeleteObjects(ctx, []string{"hints/a"}); !errors.As(err, &se) || se.Op != OpObjectDelete || !strings.Contains(err.Error(), "delete objects") {
			t.Fatalf("an ambiguous delete: %v", err)
		}
		if _, _, err := base.ReadObject(ctx, "hints/a", storage.ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the ambiguous delete did not land: %v", err)
		}
	})

	t.Run("ApartFromLTXFiles", func(t *testing.T) {
		base := NewMem()
		f := history(t, 1)[0]
		mustWrite(t, base, f)
		mustWriteObject(t, base, "manifest", data, storage.WriteOptions{})
		fc := NewFaulty(base, FaultyConfig{Open: Behaviour{ErrorRate: 1}})
		if _, _, err := storage.ReadAllObject(ctx, fc, "manifest", storage.ReadOptions{}, 1<<20); err != nil {
			t.Fatalf("faults of OpOpen failed an object read: %v", err)
		}
		fc.SetBehaviour(OpOpen, Behaviour{})
		fc.SetBehaviour(OpObjectRead, Behaviour{ErrorRate: 1})
		readAll(t, fc, f.level, f.min, f.max, 0, 0)
		if _, _, err := fc.ReadObject(ctx, "manifest", storage.ReadOptions{}); err == nil {
			t.Fatal("an object read error rate of 1 let a read through")
		}
		uni := NewFaulty(base, Uniform(1, Behaviour{ErrorRate: 1}))
		if _, err := uni.ListObjects(ctx, ""); err == nil {
			t.Fatal("Uniform left object requests without faults")
		}
	})
}
