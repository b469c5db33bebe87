package main

import (
	"io"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/mem"
)

// TestRecorderObjects: an object's read is a span of its own kind, in the
// round trips but not among the ranged GETs; a listing of objects is a
// list.
func TestRecorderObjects(t *testing.T) {
	ctx := t.Context()
	mem := mem.New()
	if _, err := mem.WriteObject(ctx, "manifest", strings.NewReader("0123456789"), storage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r := newRecorder(mem)
	rc, _, err := r.ReadObject(ctx, "manifest", storage.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if _, err := r.ListObjects(ctx, ""); err != nil {
		t.Fatal(err)
	}
	spans := r.since(0)
	if len(spans) != 2 || spans[0].op != "object" || spans[0].bytes != 10 || spans[1].op != "list" {
		t.Fatalf("spans %+v, want an object read of 10 bytes, then a list", spans)
	}
	if n := len(gets(spans)); n != 0 {
		t.Fatalf("%d object reads counted as ranged GETs", n)
	}
	if n := roundTrips(spans); n != 2 {
		t.Fatalf("%d round trips, want 2", n)
	}
}
