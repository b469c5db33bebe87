package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// runListAllContract checks the listing of every level at once
// (storage.ListAll, and AllLTXFiles where the client has it): the files of
// levels 0 through SnapshotLevel, level by level, exactly as the listings
// of each level show them, and nothing of the legacy hint level.
func runListAllContract(t *testing.T, newClient func(t *testing.T) storage.Client) {
	ctx := context.Background()

	t.Run("ListAllIsEveryLevelInOrder", func(t *testing.T) {
		c := newClient(t)
		if infos, err := storage.ListAll(ctx, c, true); err != nil || len(infos) != 0 {
			t.Fatalf("an empty replica lists %d files (err %v)", len(infos), err)
		}

		// History's L0 files 1-5, L1 1-5 and L9 1-5, and the same L1
		// file at levels 2 and 8 (a level's files need not chain), the
		// first L0 file at the legacy hint level; written out of order.
		files := History(t, 5)
		l1 := filesAt(files, 1)[0]
		for _, level := range []int{2, 8} {
			files = append(files, File{Level: level, MinTXID: l1.MinTXID, MaxTXID: l1.MaxTXID, Data: l1.Data})
		}
		for _, i := range []int{6, 4, 0, 7, 2, 5, 1, 3, 8} {
			MustWrite(t, c, files[i])
		}
		legacy := files[0]
		if _, err := c.WriteLTXFile(ctx, storage.LegacyHintLevel, legacy.MinTXID, legacy.MaxTXID, bytes.NewReader(legacy.Data)); err != nil {
			t.Fatalf("write %s: %v", storage.FileName(storage.LegacyHintLevel, legacy.MinTXID, legacy.MaxTXID), err)
		}

		for _, useMetadata := range []bool{false, true} {
			var want []*ltx.FileInfo
			for level := 0; level <= storage.SnapshotLevel; level++ {
				infos, err := storage.ListLevel(ctx, c, level, 0, useMetadata)
				if err != nil {
					t.Fatalf("list level %d: %v", level, err)
				}
				want = append(want, infos...)
			}
			if len(want) != len(files) {
				t.Fatalf("the levels list %d files, want the %d written", len(want), len(files))
			}
			got, err := storage.ListAll(ctx, c, useMetadata)
			if err != nil {
				t.Fatalf("ListAll: %v", err)
			}
			checkSameListing(t, fmt.Sprintf("ListAll (useMetadata %v)", useMetadata), got, want)
			if a, ok := c.(storage.AllLister); ok {
				got, err := a.AllLTXFiles(ctx, useMetadata)
				if err != nil {
					t.Fatalf("AllLTXFiles: %v", err)
				}
				checkSameListing(t, fmt.Sprintf("AllLTXFiles (useMetadata %v)", useMetadata), got, want)
			}
		}
	})
}

// checkSameListing compares a listing of every level with the listings
// of each level, one after another.
func checkSameListing(t *testing.T, what string, got, want []*ltx.FileInfo) {
	t.Helper()
	same := slices.EqualFunc(got, want, func(a, b *ltx.FileInfo) bool {
		return a.Level == b.Level && a.MinTXID == b.MinTXID && a.MaxTXID == b.MaxTXID && a.Size == b.Size && a.CreatedAt.Equal(b.CreatedAt)
	})
	if !same {
		t.Fatalf("%s lists\n%s\nthe levels, one after another, list\n%s", what, describeListing(got), describeListing(want))
	}
}

func describeListing(infos []*ltx.FileInfo) string {
	var b bytes.Buffer
	for _, info := range infos {
		fmt.Fprintf(&b, "  %s %d bytes at %s\n", storage.FileName(info.Level, info.MinTXID, info.MaxTXID), info.Size, info.CreatedAt.Format(ltx.RFC3339Milli))
	}
	return b.String()
}
