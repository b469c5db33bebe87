package s3_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/storage"
	s3 "github.com/ltxvfs/ltxvfs/storage/s3"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// ltxFiles encodes n consecutive single-transaction LTX files with
// timestamps a second apart.
func ltxFiles(t *testing.T, n int) [][]byte {
	t.Helper()
	clock := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	db := storagetest.NewDB(4096)
	db.Now = func() time.Time { clock = clock.Add(time.Second); return clock }
	var files [][]byte
	for i := 1; i <= n; i++ {
		files = append(files, db.Apply(t, uint32(i), map[uint32][]byte{uint32(i): storagetest.FillPage(4096, uint32(i), i)}))
	}
	return files
}

func put(t *testing.T, r *s3test.Replica, key string, body []byte, meta map[string]string) {
	t.Helper()
	if _, err := r.SDK.PutObject(context.Background(), &awss3.PutObjectInput{
		Bucket: aws.String(r.Bucket), Key: aws.String(key), Body: bytes.NewReader(body), Metadata: meta,
	}); err != nil {
		t.Fatalf("plant %s: %v", key, err)
	}
}

func keys(t *testing.T, r *s3test.Replica) []string {
	t.Helper()
	out, err := r.SDK.ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: aws.String(r.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, o := range out.Contents {
		ks = append(ks, aws.ToString(o.Key))
	}
	return ks
}

// TestObjectsAreWhereLitestreamPutsThem checks the key and metadata of a
// written file as another tool sees them through the raw API.
func TestObjectsAreWhereLitestreamPutsThem(t *testing.T) {
	s3test.ForEach(t, testObjectsAreWhereLitestreamPutsThem)
}

func testObjectsAreWhereLitestreamPutsThem(t *testing.T, srv *s3test.Server) {
	r := srv.NewReplica(t)
	ctx := context.Background()
	data := storagetest.NewDB(4096)
	data.Now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC) }
	file := data.Apply(t, 1, map[uint32][]byte{1: storagetest.FillPage(4096, 1, 1)})
	for _, level := range []int{0, 1, 9} {
		if _, err := r.Client.WriteLTXFile(ctx, level, 1, 1, bytes.NewReader(file)); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(keys(t, r), " ")
	want := "db/0000/0000000000000001-0000000000000001.ltx db/0001/0000000000000001-0000000000000001.ltx db/0009/0000000000000001-0000000000000001.ltx"
	if got != want {
		t.Fatalf("keys:\n got %s\nwant %s", got, want)
	}
	head, err := r.SDK.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(r.Bucket), Key: aws.String("db/0009/0000000000000001-0000000000000001.ltx")})
	if err != nil {
		t.Fatal(err)
	}
	if ts := head.Metadata[s3.MetadataKeyTimestamp]; ts != "2026-01-02T03:04:05.678Z" {
		t.Fatalf("litestream-timestamp = %q, want 2026-01-02T03:04:05.678Z", ts)
	}
	if aws.ToInt64(head.ContentLength) != int64(len(file)) {
		t.Fatalf("stored %d bytes, wrote %d", aws.ToInt64(head.ContentLength), len(file))
	}
}

// TestForeignKeysAreIgnored plants what other tools and crashed uploads
// leave beside a replica; only the LTX files of the level are listed.
func TestForeignKeysAreIgnored(t *testing.T) { s3test.ForEach(t, testForeignKeysAreIgnored) }

func testForeignKeysAreIgnored(t *testing.T, srv *s3test.Server) {
	r := srv.NewReplica(t)
	ctx := context.Background()
	files := ltxFiles(t, 3)
	if _, err := r.Client.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(files[0])); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		"db/0000/README",
		"db/0000/0000000000000001-0000000000000001.ltx.tmp",
		"db/0000/0000000000000002-0000000000000002.LTX",
		"db/0000/sub/0000000000000002-0000000000000002.ltx",
		"db/0000/000000000000002-0000000000000002.ltx",
		"db/00000/0000000000000002-0000000000000002.ltx",
		"db/0000000000000002-0000000000000002.ltx",
		"db2/0000/0000000000000002-0000000000000002.ltx",
		"other/0000/0000000000000002-0000000000000002.ltx",
	} {
		put(t, r, key, files[1], nil)
	}
	for _, useMetadata := range []bool{false, true} {
		infos, err := storage.ListLevel(ctx, r.Client, 0, 0, useMetadata)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 1 || infos[0].MinTXID != 1 || infos[0].Size != int64(len(files[0])) {
			t.Fatalf("useMetadata=%v: listed %v, want only 0000000000000001-0000000000000001.ltx", useMetadata, infos)
		}
		// Listed at once, without a delimiter: the deeper keys come too,
		// and must be left out as well.
		all, err := r.Client.AllLTXFiles(ctx, useMetadata)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 || all[0].Level != 0 || all[0].MinTXID != 1 || all[0].Size != int64(len(files[0])) {
			t.Fatalf("useMetadata=%v: AllLTXFiles listed %v, want only L0/0000000000000001-0000000000000001.ltx", useMetadata, all)
		}
	}
}

// TestTimestampFallsBackToLastModified lists a file another tool wrote
// without the litestream-timestamp metadata.
func TestTimestampFallsBackToLastModified(t *testing.T) {
	s3test.ForEach(t, testTimestampFallsBackToLastModified)
}

func testTimestampFallsBackToLastModified(t *testing.T, srv *s3test.Server) {
	r := srv.NewReplica(t)
	ctx := context.Background()
	files := ltxFiles(t, 2)
	before := time.Now().Add(-time.Minute)
	put(t, r, storage.ObjectKey(r.Prefix, 0, 1, 1), files[0], nil)
	put(t, r, storage.ObjectKey(r.Prefix, 0, 2, 2), files[1], map[string]string{"litestream-timestamp": "2025-06-07T08:09:10.123456789Z"})

	infos, err := storage.ListLevel(ctx, r.Client, 0, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("listed %d files, want 2", len(infos))
	}
	if infos[0].CreatedAt.Before(before) || infos[0].CreatedAt.After(time.Now().Add(time.Minute)) {
		t.Fatalf("file without metadata: CreatedAt %v, want its LastModified (about now)", infos[0].CreatedAt)
	}
	// Litestream writes nanoseconds; the time must be taken as written.
	if want := time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.UTC); !infos[1].CreatedAt.Equal(want) {
		t.Fatalf("file with Litestream's metadata: CreatedAt %v, want %v", infos[1].CreatedAt, want)
	}

	put(t, r, storage.ObjectKey(r.Prefix, 0, 3, 3), files[1], map[string]string{"litestream-timestamp": "yesterday"})
	_, err = storage.ListLevel(ctx, r.Client, 0, 0, true)
	if err == nil || !strings.Contains(err.Error(), "0000000000000003-0000000000000003.ltx") || !strings.Contains(err.Error(), "yesterday") {
		t.Fatalf("unparseable metadata: got %v, want an error naming the key and the value", err)
	}
}

// TestListingManyFiles crosses ListObjectsV2 pages (1000 keys each) and
// deletes more than one DeleteObjects batch.
func TestListingManyFiles(t *testing.T) { s3test.ForEach(t, testListingManyFiles) }

func testListingManyFiles(t *testing.T, srv *s3test.Server) {
	r := srv.NewReplica(t)
	ctx := context.Background()
	file := ltxFiles(t, 1)[0]
	const n = 1100
	errc := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := 1; i <= n; i++ {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			// Bodies are the same file: the listing reads names only.
			_, err := r.SDK.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(r.Bucket), Key: aws.String(storage.ObjectKey(r.Prefix, 0, ltx.TXID(i), ltx.TXID(i))), Body: bytes.NewReader(file)})
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	infos, err := storage.ListLevel(ctx, r.Client, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != n {
		t.Fatalf("listed %d files, want %d", len(infos), n)
	}
	for i, info := range infos {
		if info.MinTXID != ltx.TXID(i+1) {
			t.Fatalf("file %d has MinTXID %d: listing out of order", i, info.MinTXID)
		}
	}
	// Every level at once: one listing across the same pages.
	all, err := r.Client.AllLTXFiles(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n || all[0].MinTXID != 1 || all[n-1].MinTXID != n {
		t.Fatalf("AllLTXFiles listed %d files, want %d in order", len(all), n)
	}
	seeked, err := storage.ListLevel(ctx, r.Client, 0, 1050, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(seeked) != 51 || seeked[0].MinTXID != 1050 {
		t.Fatalf("seek 1050 listed %d files from %v", len(seeked), seeked[0])
	}
	if err := r.Client.DeleteLTXFiles(ctx, infos[:1050]); err != nil {
		t.Fatal(err)
	}
	left, err := storage.ListLevel(ctx, r.Client, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 50 || left[0].MinTXID != 1051 {
		t.Fatalf("after deleting 1050 files, %d are left", len(left))
	}
}

// TestDeleteAllLeavesTheRestOfThePrefix removes what is under the level
// prefixes, temp files included, and nothing else.
func TestDeleteAllLeavesTheRestOfThePrefix(t *testing.T) {
	s3test.ForEach(t, testDeleteAllLeavesTheRestOfThePrefix)
}

func testDeleteAllLeavesTheRestOfThePrefix(t *testing.T, srv *s3test.Server) {
	r := srv.NewReplica(t)
	ctx := context.Background()
	files := ltxFiles(t, 1)
	for _, level := range []int{0, 3, 9} {
		if _, err := r.Client.WriteLTXFile(ctx, level, 1, 1, bytes.NewReader(files[0])); err != nil {
			t.Fatal(err)
		}
	}
	put(t, r, "db/0000/0000000000000002-0000000000000002.ltx.tmp", []byte("x"), nil)
	put(t, r, "db/notes.txt", []byte("x"), nil)
	put(t, r, "db2/0000/0000000000000001-0000000000000001.ltx", files[0], nil)
	if err := r.Client.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys(t, r), " "); got != "db/notes.txt db2/0000/0000000000000001-0000000000000001.ltx" {
		t.Fatalf("after DeleteAll the bucket holds %s", got)
	}
}

// TestLargeFileRoundTrip writes a file past the in-memory upload limit, so
// that it goes through a temp file.
func TestLargeFileRoundTrip(t *testing.T) { s3test.ForEach(t, testLargeFileRoundTrip) }

func testLargeFileRoundTrip(t *testing.T, srv *s3test.Server) {
	r := srv.NewReplica(t)
	ctx := context.Background()
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	db := storagetest.NewDB(4096)
	pages := map[uint32][]byte{}
	for pgno := uint32(1); pgno <= 2300; pgno++ { // random pages do not compress: ~9.4 MB
		p := make([]byte, 4096)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		pages[pgno] = p
	}
	file := db.Apply(t, 2300, pages)
	if len(file) <= 8<<20 {
		t.Fatalf("test file is %d bytes, not past the 8 MiB in-memory limit", len(file))
	}
	info, err := r.Client.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(file)) {
		t.Fatalf("wrote %d bytes, info says %d", len(file), info.Size)
	}
	if got := storagetest.ReadFile(t, r.Client, 0, 1, 1); !bytes.Equal(got, file) {
		t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(file))
	}
}

// TestOpenByURL opens the backend the way users do, by URL with the
// standard credential chain.
func TestOpenByURL(t *testing.T) { s3test.ForEach(t, testOpenByURL) }

func testOpenByURL(t *testing.T, srv *s3test.Server) {
	bucket := srv.NewBucket(t)
	srv.Setenv(t)
	c, err := storage.Open(context.Background(), srv.URL(bucket, "a/b"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "s3://" + bucket + "/a/b at " + srv.Endpoint; c.String() != want {
		t.Fatalf("String() = %q, want %q", c.String(), want)
	}
	file := ltxFiles(t, 1)[0]
	if _, err := c.WriteLTXFile(context.Background(), 2, 1, 1, bytes.NewReader(file)); err != nil {
		t.Fatal(err)
	}
	infos, err := storage.ListLevel(context.Background(), c, 2, 0, true)
	if err != nil || len(infos) != 1 {
		t.Fatalf("listed %v, %v", infos, err)
	}
	if _, err := c.OpenLTXFile(context.Background(), 2, 1, 1, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenLTXFile(context.Background(), 1, 1, 1, 0, 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestEmptyPrefix uses a whole bucket. Litestream builds keys as prefix +
// "/" + level, so they start with a slash; the replica must still work.
func TestEmptyPrefix(t *testing.T) { s3test.ForEach(t, testEmptyPrefix) }

func testEmptyPrefix(t *testing.T, srv *s3test.Server) {
	bucket := srv.NewBucket(t)
	c := srv.Client(t, srv.URL(bucket, ""))
	ctx := context.Background()
	files := ltxFiles(t, 2)
	for i, f := range files {
		if _, err := c.WriteLTXFile(ctx, 0, ltx.TXID(i+1), ltx.TXID(i+1), bytes.NewReader(f)); err != nil {
			t.Fatal(err)
		}
	}
	infos, err := storage.ListLevel(ctx, c, 0, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].MinTXID != 2 {
		t.Fatalf("listed %v, want TXID 2", infos)
	}
	if all, err := storage.ListAll(ctx, c, true); err != nil || len(all) != 2 || all[0].MinTXID != 1 || all[1].MinTXID != 2 {
		t.Fatalf("ListAll: %v, %v; want TXIDs 1 and 2", all, err)
	}
	if got := storagetest.ReadFile(t, c, 0, 2, 2); !bytes.Equal(got, files[1]) {
		t.Fatalf("read back %d bytes, want the %d written", len(got), len(files[1]))
	}
	if err := c.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if infos, err := storage.ListLevel(ctx, c, 0, 0, false); err != nil || len(infos) != 0 {
		t.Fatalf("after DeleteAll: %v, %v", infos, err)
	}
}
