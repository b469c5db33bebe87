package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/mem"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// TestFollowCost: the figures of a follower come from its counts: kinds,
// per poll, per hour, and dollars at S3 Standard prices (the issue's
// example: 3,600 LISTs and 3,200 GETs an hour are $13.14 + $0.93 a month).
func TestFollowCost(t *testing.T) {
	c := wrap.Counts{Lists: 3000, ObjectLists: 600, Opens: 1200, ObjectReads: 2000, ObjectNotModified: 1500}
	f := newFollowCost(c, time.Hour, time.Second)
	if f.Lists != 3600 || f.LTXGets != 1200 || f.ObjectGets != 500 || f.NotModified != 1500 || f.Requests != 6800 {
		t.Errorf("by kind: %+v", f)
	}
	if f.Polls != 3600 || f.RequestsPerHour != 6800 || f.ListsPerHour != 3600 || f.GetsPerHour != 3200 || math.Abs(f.RequestsPerPoll-6800.0/3600) > 1e-3 {
		t.Errorf("rates: %+v", f)
	}
	if want := 13.14 + 0.9344; math.Abs(f.DollarsPerMonth-want) > 1e-3 {
		t.Errorf("$%.4f per reader-month, want $%.4f", f.DollarsPerMonth, want)
	}

	// A follower through the manifest: one 304 or one GET a poll, no LIST.
	f = newFollowCost(wrap.Counts{ObjectReads: 60, ObjectNotModified: 50}, time.Minute, time.Second)
	if f.RequestsPerPoll != 1 || f.Lists != 0 || f.RequestsPerHour != 3600 || math.Abs(f.DollarsPerMonth-3600*730*0.0004/1000) > 1e-3 {
		t.Errorf("manifest follower: %+v", f)
	}
	if f := newFollowCost(wrap.Counts{ObjectReads: 3}, 0, time.Second); f.Requests != 3 || f.Polls != 0 || f.DollarsPerMonth != 0 {
		t.Errorf("no time followed: %+v", f)
	}
}

// TestHiddenViews: without the manifest, a reader finds none (a not-found
// error, as from a replica that has none) but still the hints; without
// objects, neither; the LTX files are the replica's in both.
func TestHiddenViews(t *testing.T) {
	ctx := context.Background()
	c := mem.New()
	files := storagetest.History(t, 2)
	for _, f := range files {
		storagetest.MustWrite(t, c, f)
	}
	hint := manifest.HintDir + "/x"
	storagetest.MustWriteObject(t, c, manifest.Name, []byte("manifest"), storage.WriteOptions{})
	storagetest.MustWriteObject(t, c, hint, []byte("hint"), storage.WriteOptions{})

	for _, tc := range []struct {
		name    string
		view    storage.Client
		visible []string
	}{
		{"manifest off", withoutManifest(c), []string{hint}},
		{"litestream-shaped", withoutObjects(c), nil},
	} {
		for _, name := range []string{manifest.Name, hint} {
			_, _, err := tc.view.ReadObject(ctx, name, storage.ReadOptions{})
			want := slices.Contains(tc.visible, name)
			if want && err != nil {
				t.Errorf("%s: read %s: %v", tc.name, name, err)
			}
			if !want && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: read %s: %v, want not found", tc.name, name, err)
			}
		}
		objs, err := tc.view.ListObjects(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, o := range objs {
			names = append(names, o.Name)
		}
		if len(names) != len(tc.visible) || (len(names) > 0 && names[0] != tc.visible[0]) {
			t.Errorf("%s: lists objects %v, want %v", tc.name, names, tc.visible)
		}
		all, err := storage.ListAll(ctx, tc.view, false)
		if err != nil || len(all) != len(files) {
			t.Errorf("%s: lists %d LTX files (%v), want %d", tc.name, len(all), err, len(files))
		}
		f := files[0]
		if got := storagetest.ReadRange(t, tc.view, f.Level, f.MinTXID, f.MaxTXID, 0, 0); !bytes.Equal(got, f.Data) {
			t.Errorf("%s: %s reads differently", tc.name, f)
		}
	}
}

// TestTee: what the writer stores in the replica is repeated in the mirror
// (files byte for byte, objects unconditionally), a write the replica
// refused is not, and deletions follow.
func TestTee(t *testing.T) {
	ctx := context.Background()
	replica, mirror := mem.New(), mem.New()
	tc := &tee{Client: replica, mirror: mirror, spool: t.TempDir()}
	files := storagetest.History(t, 2)
	for _, f := range files {
		storagetest.MustWrite(t, tc, f)
	}
	for _, f := range files {
		if got := storagetest.ReadRange(t, mirror, f.Level, f.MinTXID, f.MaxTXID, 0, 0); !bytes.Equal(got, f.Data) {
			t.Errorf("the mirror's %s differs from the replica's", f)
		}
	}

	// The mirror's ETags are its own: here it holds an object the replica
	// does not, and the writer's conditions name the replica's ETags.
	storagetest.MustWriteObject(t, mirror, manifest.Name, []byte("older"), storage.WriteOptions{})
	storagetest.MustWriteObject(t, mirror, manifest.Name, []byte("old"), storage.WriteOptions{})
	first := storagetest.MustWriteObject(t, tc, manifest.Name, []byte("one"), storage.WriteOptions{IfNoneMatch: true})
	storagetest.MustWriteObject(t, tc, manifest.Name, []byte("two"), storage.WriteOptions{IfMatch: first.ETag})
	if _, err := tc.WriteObject(ctx, manifest.Name, bytes.NewReader([]byte("three")), storage.WriteOptions{IfMatch: first.ETag}); !errors.Is(err, storage.ErrPreconditionFailed) {
		t.Fatalf("a write on a stale ETag: %v, want ErrPreconditionFailed", err)
	}
	if got, _ := storagetest.MustReadObject(t, mirror, manifest.Name, ""); string(got) != "two" {
		t.Errorf("the mirror's manifest is %q, want %q", got, "two")
	}

	if err := tc.DeleteLTXFiles(ctx, []*ltx.FileInfo{{Level: files[0].Level, MinTXID: files[0].MinTXID, MaxTXID: files[0].MaxTXID}}); err != nil {
		t.Fatal(err)
	}
	if err := tc.DeleteObjects(ctx, []string{manifest.Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := mirror.OpenLTXFile(ctx, files[0].Level, files[0].MinTXID, files[0].MaxTXID, 0, 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file deleted from the replica is still in the mirror (%v)", err)
	}
	if _, _, err := mirror.ReadObject(ctx, manifest.Name, storage.ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an object deleted from the replica is still in the mirror (%v)", err)
	}
}
