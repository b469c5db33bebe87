package s3

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"

	"github.com/ltxvfs/ltxvfs/storage"
)

// LTXFiles lists a level with ListObjectsV2, one request per thousand
// objects. Keys that are not LTX file names directly under the level's
// prefix (temp files, files of other tools, deeper "directories") are
// ignored. With useMetadata, each file's CreatedAt is read from its
// litestream-timestamp metadata with one HEAD per file, several at a time;
// a file without it (written by another tool) keeps its LastModified.
func (c *Client) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	if err := storage.CheckLevel(level); err != nil {
		return nil, err
	}
	startAfter := ""
	if seek > 0 {
		// Names are fixed-width hex, so every file at or above seek sorts
		// after its bare MinTXID; the filter below stays the authority.
		startAfter = seek.String()
	}
	prefix, objs, err := c.objectsUnder(ctx, storage.ObjectLevelPrefix(c.prefix, level), startAfter, "/")
	if err != nil {
		return nil, err
	}
	var files []object
	for _, obj := range objs {
		if f, ok := fileOf(obj, prefix, level); ok && f.info.MinTXID >= seek {
			files = append(files, f)
		}
	}
	infos, err := c.infos(ctx, files, useMetadata)
	if err != nil {
		return nil, err
	}
	return ltx.NewFileInfoSliceIterator(infos), nil
}

// AllLTXFiles lists levels 0 through SnapshotLevel (see
// storage.AllLister) with one ListObjectsV2 of the prefix all their keys
// share, <prefix>/000, without a delimiter: one request per thousand
// objects, as LTXFiles, but the pages of a listing follow one another
// where listings of the levels run side by side, so a replica of more than
// a thousand files takes a round trip per thousand. Keys are filtered as
// LTXFiles filters them; the legacy hint level and the object folder lie
// outside the prefix. useMetadata is as for LTXFiles.
func (c *Client) AllLTXFiles(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	shared := sharedPrefix(storage.ObjectLevelPrefix(c.prefix, 0), storage.ObjectLevelPrefix(c.prefix, storage.SnapshotLevel))
	listed, objs, err := c.objectsUnder(ctx, shared, "", "")
	if err != nil {
		return nil, err
	}
	cut := len(shared) - len(listed) // 1 where the server drops leading slashes
	var files []object
	for _, obj := range objs {
		for level := 0; level <= storage.SnapshotLevel; level++ {
			if f, ok := fileOf(obj, storage.ObjectLevelPrefix(c.prefix, level)[cut:], level); ok {
				files = append(files, f)
				break
			}
		}
	}
	return c.infos(ctx, files, useMetadata)
}

// sharedPrefix is the longest prefix of a and b.
func sharedPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return a[:n]
}

type object struct {
	key  string
	info *ltx.FileInfo
}

// fileOf reads the LTX file of level that obj is, if its key is an LTX
// file name directly under prefix, the level's.
func fileOf(obj types.Object, prefix string, level int) (object, bool) {
	key := aws.ToString(obj.Key)
	base, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return object{}, false
	}
	minTXID, maxTXID, err := ltx.ParseFilename(base)
	if err != nil {
		return object{}, false
	}
	return object{key: key, info: &ltx.FileInfo{
		Level:     level,
		MinTXID:   minTXID,
		MaxTXID:   maxTXID,
		Size:      aws.ToInt64(obj.Size),
		CreatedAt: aws.ToTime(obj.LastModified).UTC(),
	}}, true
}

// infos orders the files of a listing by level, then TXIDs, with their
// timestamps read from metadata if useMetadata.
func (c *Client) infos(ctx context.Context, files []object, useMetadata bool) ([]*ltx.FileInfo, error) {
	// S3 returns keys in byte order, which is TXID order; S3-compatible
	// servers are not all as careful.
	slices.SortFunc(files, func(a, b object) int {
		return cmp.Or(cmp.Compare(a.info.Level, b.info.Level), cmp.Compare(a.info.MinTXID, b.info.MinTXID), cmp.Compare(a.info.MaxTXID, b.info.MaxTXID))
	})
	if useMetadata {
		var err error
		if files, err = c.readTimestamps(ctx, files); err != nil {
			return nil, err
		}
	}
	infos := make([]*ltx.FileInfo, len(files))
	for i, f := range files {
		infos[i] = f.info
	}
	return infos, nil
}

// objectsUnder lists the objects whose keys start with prefix (a level's,
// or one that several levels' share), after the name startAfter if given,
// and returns them with the prefix their keys carry.
//
// With an empty replica prefix, keys start with a slash ("/0000/..."), as
// Litestream builds them. Some S3-compatible servers (versitygw among them)
// drop a key's leading slash on the way in: objects written as "/0000/x"
// are then listed as "0000/x", though still read and deleted by either name.
// When the slashed listing is empty and the bare one is not, one HEAD of a
// listed object by its slashed name tells the two cases apart; a server that
// keeps slashes (AWS) answers 404, and its bare keys are not the replica's.
func (c *Client) objectsUnder(ctx context.Context, prefix, startAfter, delimiter string) (string, []types.Object, error) {
	if c.prefix == "" && c.slashless.Load() {
		prefix = prefix[1:]
	}
	objs, err := c.listObjects(ctx, prefix, startAfter, delimiter)
	if err != nil || len(objs) > 0 || c.prefix != "" || c.slashless.Load() {
		return prefix, objs, err
	}

	bare := prefix[1:]
	objs, err = c.listObjects(ctx, bare, startAfter, delimiter)
	if err != nil || len(objs) == 0 {
		return prefix, nil, err
	}
	_, err = c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String("/" + aws.ToString(objs[0].Key))})
	if isNotFound(err) {
		return prefix, nil, nil
	} else if err != nil {
		return "", nil, fmt.Errorf("list %s: %w", c.name(prefix), classify(err, c.bucket))
	}
	c.slashless.Store(true)
	return bare, objs, nil
}

func (c *Client) listObjects(ctx context.Context, prefix, startAfter, delimiter string) ([]types.Object, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(c.bucket), Prefix: aws.String(prefix)}
	if startAfter != "" {
		in.StartAfter = aws.String(prefix + startAfter)
	}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	var objs []types.Object
	pages := s3.NewListObjectsV2Paginator(c.s3, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", c.name(prefix), classify(err, c.bucket))
		}
		objs = append(objs, page.Contents...)
	}
	return objs, nil
}

// readTimestamps sets each file's CreatedAt from its metadata. A file gone
// between the listing and its HEAD (retention at work) is dropped, as the
// next listing would not show it either.
func (c *Client) readTimestamps(ctx context.Context, files []object) ([]object, error) {
	gone := make([]bool, len(files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.headLimit)
	for i := range files {
		f := files[i]
		g.Go(func() error {
			out, err := c.s3.HeadObject(gctx, &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(f.key)})
			if isNotFound(err) {
				gone[i] = true
				return nil
			} else if err != nil {
				return fmt.Errorf("read metadata of %s: %w", c.name(f.key), classify(err, c.bucket))
			}
			v, ok := out.Metadata[MetadataKeyTimestamp]
			if !ok {
				return nil
			}
			// RFC3339Nano parses both our millisecond format and
			// Litestream's nanosecond one.
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return fmt.Errorf("read metadata of %s: %s %q is not an RFC 3339 time", c.name(f.key), MetadataKeyTimestamp, v)
			}
			f.info.CreatedAt = t.UTC()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	kept := files[:0]
	for i, f := range files {
		if !gone[i] {
			kept = append(kept, f)
		}
	}
	return kept, nil
}
