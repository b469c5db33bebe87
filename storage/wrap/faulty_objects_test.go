package wrap_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/mem"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// Object requests get the same faults as LTX file requests, configured
// apart from them.
func TestFaultyObjects(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("manifest "), 100)

	t.Run("CutBodies", func(t *testing.T) {
		base := mem.New()
		storagetest.MustWriteObject(t, base, "manifest", data, storage.WriteOptions{})
		for _, b := range []wrap.Behaviour{{TruncateRate: 1}, {ShortRate: 1}} {
			fc := wrap.NewFaulty(base, wrap.FaultyConfig{Seed: 2, ObjectRead: b})
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
		fc := wrap.NewFaulty(base, wrap.FaultyConfig{Seed: 2, ObjectRead: wrap.Behaviour{ShortRate: 1}})
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
			b      wrap.Behaviour
			landed bool
		}{
			{"FailBefore", wrap.Behaviour{ErrorRate: 1}, false},
			{"FailAfter", wrap.Behaviour{AmbiguousRate: 1}, true},
			{"BrokenUpload", wrap.Behaviour{TruncateRate: 1}, false},
		} {
			base := mem.New()
			old := storagetest.MustWriteObject(t, base, "manifest", []byte("old"), storage.WriteOptions{})
			fc := wrap.NewFaulty(base, wrap.FaultyConfig{Seed: 9, ObjectWrite: tc.b})
			if _, err := fc.WriteObject(ctx, "manifest", bytes.NewReader(data), storage.WriteOptions{IfMatch: old.ETag}); err == nil {
				t.Fatalf("%s: the write succeeded", tc.name)
			}
			if got := fc.Injected().Total(); got != 1 {
				t.Fatalf("%s: %d faults injected, want 1", tc.name, got)
			}
			got, _ := storagetest.MustReadObject(t, base, "manifest", "")
			if want := map[bool]string{true: string(data), false: "old"}[tc.landed]; string(got) != want {
				t.Fatalf("%s: the object holds %d bytes, want %d", tc.name, len(got), len(want))
			}
		}
	})

	t.Run("ListsAndDeletes", func(t *testing.T) {
		base := mem.New()
		storagetest.MustWriteObject(t, base, "hints/a", data, storage.WriteOptions{})
		fc := wrap.NewFaulty(base, wrap.FaultyConfig{Seed: 5, ObjectList: wrap.Behaviour{TruncateRate: 1}, ObjectDelete: wrap.Behaviour{AmbiguousRate: 1}})
		var se *wrap.StatusError
		if infos, err := fc.ListObjects(ctx, "hints"); !errors.As(err, &se) {
			t.Fatalf("a cut listing: %+v and %v, want a *wrap.StatusError", infos, err)
		}
		if err := fc.DeleteObjects(ctx, []string{"hints/a"}); !errors.As(err, &se) || se.Op != wrap.OpObjectDelete || !strings.Contains(err.Error(), "delete objects") {
			t.Fatalf("an ambiguous delete: %v", err)
		}
		if _, _, err := base.ReadObject(ctx, "hints/a", storage.ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the ambiguous delete did not land: %v", err)
		}
	})

	t.Run("ApartFromLTXFiles", func(t *testing.T) {
		base := mem.New()
		f := storagetest.History(t, 1)[0]
		storagetest.MustWrite(t, base, f)
		storagetest.MustWriteObject(t, base, "manifest", data, storage.WriteOptions{})
		fc := wrap.NewFaulty(base, wrap.FaultyConfig{Open: wrap.Behaviour{ErrorRate: 1}})
		if _, _, err := storage.ReadAllObject(ctx, fc, "manifest", storage.ReadOptions{}, 1<<20); err != nil {
			t.Fatalf("faults of wrap.OpOpen failed an object read: %v", err)
		}
		fc.SetBehaviour(wrap.OpOpen, wrap.Behaviour{})
		fc.SetBehaviour(wrap.OpObjectRead, wrap.Behaviour{ErrorRate: 1})
		storagetest.ReadRange(t, fc, f.Level, f.MinTXID, f.MaxTXID, 0, 0)
		if _, _, err := fc.ReadObject(ctx, "manifest", storage.ReadOptions{}); err == nil {
			t.Fatal("an object read error rate of 1 let a read through")
		}
		uni := wrap.NewFaulty(base, wrap.Uniform(1, wrap.Behaviour{ErrorRate: 1}))
		if _, err := uni.ListObjects(ctx, ""); err == nil {
			t.Fatal("wrap.Uniform left object requests without faults")
		}
	})
}
