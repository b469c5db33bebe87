package index

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// TestBadFiles: a file that is not exactly what its name and index say is
// an error naming it, never a version.
func TestBadFiles(t *testing.T) {
	// A base replica: snapshot at 1, L0 2..4; the case damages L0 3.
	build := func(t *testing.T) (*testReplica, []byte) {
		r := newTestReplica(t)
		r.grow(20)
		r.apply(20, 2, 7)
		r.apply(20, 3, 9, 11)
		r.apply(20, 4)
		return r, bytes.Clone(r.l0[3])
	}
	indexStart := func(b []byte) int {
		n := len(b) - ltx.TrailerSize - 8
		return n - int(binary.BigEndian.Uint64(b[n:]))
	}

	tests := []struct {
		name    string
		damage  func(t *testing.T, r *testReplica, b []byte)
		invalid bool   // the error matches ltx.ErrInvalidFile
		file    string // the file the error names, if not L0 3
	}{
		{"truncated end", func(t *testing.T, r *testReplica, b []byte) { r.putRaw(0, 3, 3, b[:len(b)-10]) }, true, ""},
		{"truncated to its header", func(t *testing.T, r *testReplica, b []byte) { r.putRaw(0, 3, 3, b[:ltx.HeaderSize]) }, true, ""},
		{"frames cut from the middle", func(t *testing.T, r *testReplica, b []byte) {
			r.putRaw(0, 3, 3, append(bytes.Clone(b[:ltx.HeaderSize+20]), b[ltx.HeaderSize+40:]...))
		}, true, ""},
		{"zero length", func(t *testing.T, r *testReplica, b []byte) { r.putRaw(0, 3, 3, nil) }, true, ""},
		{"wrong magic", func(t *testing.T, r *testReplica, b []byte) { copy(b, "XXXX"); r.putRaw(0, 3, 3, b) }, true, ""},
		{"page index offset changed", func(t *testing.T, r *testReplica, b []byte) {
			i := indexStart(b)
			b[i+1]++ // the first record's offset (pgno and offset are one-byte varints here)
			r.putRaw(0, 3, 3, b)
		}, true, ""},
		{"page beyond the header's commit", func(t *testing.T, r *testReplica, b []byte) {
			binary.BigEndian.PutUint32(b[12:], 8) // the file holds pages 3, 9 and 11
			r.putRaw(0, 3, 3, b)
		}, true, ""},
		{"page index size field", func(t *testing.T, r *testReplica, b []byte) {
			binary.BigEndian.PutUint64(b[len(b)-ltx.TrailerSize-8:], uint64(len(b)))
			r.putRaw(0, 3, 3, b)
		}, true, ""},
		{"header TXIDs disagree with the name", func(t *testing.T, r *testReplica, b []byte) {
			r.remove(0, 3, 3)
			r.putRaw(0, 3, 3, r.l0[4]) // the file of TXID 4, named 3
		}, true, ""},
		{"page size differs", func(t *testing.T, r *testReplica, b []byte) {
			// TXID 3 of a database with 1 KiB pages.
			d := storagetest.NewDB(1024)
			page := storagetest.FillPage(1024, 1, 1)
			d.Apply(t, 1, map[uint32][]byte{1: page})
			d.Apply(t, 1, map[uint32][]byte{1: page})
			r.putRaw(0, 3, 3, d.Apply(t, 1, map[uint32][]byte{1: page}))
		}, false, ""},
		{"does not continue the file before", func(t *testing.T, r *testReplica, b []byte) {
			// TXID 3 of another database with the same page size.
			d := storagetest.NewDB(testPageSize)
			all := map[uint32][]byte{}
			for pgno := uint32(1); pgno <= 20; pgno++ {
				all[pgno] = storagetest.FillPage(testPageSize, pgno, 99)
			}
			d.Apply(t, 20, all)
			d.Apply(t, 20, all)
			r.putRaw(0, 3, 3, d.Apply(t, 20, map[uint32][]byte{3: storagetest.FillPage(testPageSize, 3, 98)}))
		}, false, ""},
		{"snapshot without every page", func(t *testing.T, r *testReplica, b []byte) {
			d := storagetest.NewDB(testPageSize)
			r.putRaw(0, 1, 1, d.Apply(t, 20, map[uint32][]byte{1: storagetest.FillPage(testPageSize, 1, 1)}))
		}, true, "L0/0000000000000001-0000000000000001.ltx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, b := build(t)
			tt.damage(t, r, b)
			v, err := New(r.client, Options{}).Update(context.Background())
			if err == nil {
				t.Fatalf("Update gave a version at TXID %d from a bad file", v.TXID())
			}
			name := cmp.Or(tt.file, "L0/0000000000000003-0000000000000003.ltx")
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error does not name %s: %v", name, err)
			}
			if tt.invalid && !errors.Is(err, ltx.ErrInvalidFile) {
				t.Fatalf("error does not match ltx.ErrInvalidFile: %v", err)
			}
			t.Log(err)
		})
	}
}

// TestBadLargeIndex: damage in the part of a large page index that the
// second read fetches is caught too.
func TestBadLargeIndex(t *testing.T) {
	headAndTail(t)
	r := newTestReplica(t)
	r.grow(12000)
	b := bytes.Clone(r.l0[1])
	n := len(b) - ltx.TrailerSize - 8
	start := n - int(binary.BigEndian.Uint64(b[n:]))
	if len(b)-start <= tailGuess {
		t.Fatalf("the index (%d bytes) fits in the tail guess", len(b)-start)
	}
	b[start+1]++ // the first record's offset
	r.putRaw(0, 1, 1, b)
	_, err := New(r.client, Options{}).Update(context.Background())
	if !errors.Is(err, ltx.ErrInvalidFile) || !strings.Contains(err.Error(), "L0/0000000000000001-0000000000000001.ltx") {
		t.Fatalf("Update: %v, want an invalid-file error naming L0 1", err)
	}
}

// TestReadChunked: a read larger than tailChunk goes out as parallel
// requests of at most tailChunk bytes and returns the bytes in order; a
// chunk that fails fails the read, naming the file.
func TestReadChunked(t *testing.T) {
	r := newTestReplica(t)
	b := make([]byte, 2*tailChunk+5000) // what it holds does not matter here
	for i := range b {
		b[i] = byte(i * 7 / 3)
	}
	r.putRaw(0, 1, 1, b)
	n := int64(len(b)) - 100
	info := &ltx.FileInfo{Level: 0, MinTXID: 1, MaxTXID: 1, Size: int64(len(b))}
	sem := make(chan struct{}, 2) // fewer slots than chunks: they queue
	r.client.Reset()
	got, err := readChunked(context.Background(), r.client, sem, info, 100, n)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b[100:]) {
		t.Fatal("the chunks do not make up the bytes read")
	}
	if want := (n + tailChunk - 1) / tailChunk; r.client.Counts().Opens != want {
		t.Fatalf("%d requests, want %d", r.client.Counts().Opens, want)
	}

	// Past the end: the last chunk is cut short.
	_, err = readChunked(context.Background(), r.client, sem, info, 100, n+10)
	if err == nil || !strings.Contains(err.Error(), "L0/0000000000000001-0000000000000001.ltx") {
		t.Fatalf("read past the end: %v, want an error naming L0 1", err)
	}
}
