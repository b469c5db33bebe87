package s3

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// maxDeleteKeys is the most keys one DeleteObjects request may name.
const maxDeleteKeys = 1000

// DeleteLTXFiles removes files with DeleteObjects, a thousand per request.
// Keys already gone are not an error (S3 reports them deleted).
func (c *Client) DeleteLTXFiles(ctx context.Context, files []*ltx.FileInfo) error {
	keys := make([]string, 0, len(files))
	seen := make(map[string]bool, len(files))
	for _, info := range files {
		if err := storage.CheckLevel(info.Level); err != nil {
			return err
		}
		key := c.key(info.Level, info.MinTXID, info.MaxTXID)
		if !seen[key] {
			seen[key] = true
			keys = append(keys, key)
		}
	}
	return c.deleteKeys(ctx, keys)
}

// DeleteAll removes every object under the replica's level prefixes and
// its object folder (<prefix>/ltxvfs/), including temp and foreign files
// there; other keys under the prefix are left alone, as the file backend
// leaves the rest of its directory.
func (c *Client) DeleteAll(ctx context.Context) error {
	levels := make([]int, 0, storage.SnapshotLevel+2)
	for level := 0; level <= storage.SnapshotLevel; level++ {
		levels = append(levels, level)
	}
	for _, level := range append(levels, storage.LegacyHintLevel) {
		_, objs, err := c.objectsUnder(ctx, storage.ObjectLevelPrefix(c.prefix, level), "", "")
		if err := c.deleteListed(ctx, objs, err); err != nil {
			return err
		}
	}
	objs, err := c.listObjects(ctx, storage.ObjectDirPrefix(c.prefix), "", "")
	return c.deleteListed(ctx, objs, err)
}

// deleteListed deletes the objects of a listing that answered err.
func (c *Client) deleteListed(ctx context.Context, objs []types.Object, err error) error {
	if err != nil {
		return fmt.Errorf("delete all: %w", err)
	}
	keys := make([]string, len(objs))
	for i, obj := range objs {
		keys[i] = aws.ToString(obj.Key)
	}
	if err := c.deleteKeys(ctx, keys); err != nil {
		return fmt.Errorf("delete all: %w", err)
	}
	return nil
}

func (c *Client) deleteKeys(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), maxDeleteKeys)
		objs := make([]types.ObjectIdentifier, n)
		for i, key := range keys[:n] {
			objs[i] = types.ObjectIdentifier{Key: aws.String(key)}
		}
		out, err := c.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(c.bucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
		}, withContentMD5)
		if err != nil {
			return fmt.Errorf("delete %d objects from %s (first %s): %w", n, c.desc, c.name(keys[0]), classify(err, c.bucket))
		}
		var failed []string
		for _, e := range out.Errors {
			if aws.ToString(e.Code) == "NoSuchKey" {
				continue
			}
			failed = append(failed, fmt.Sprintf("%s: %s %s", c.name(aws.ToString(e.Key)), aws.ToString(e.Code), aws.ToString(e.Message)))
		}
		if len(failed) > 0 {
			return fmt.Errorf("delete %d of %d objects failed: %s", len(failed), n, strings.Join(failed[:min(len(failed), 3)], "; "))
		}
		keys = keys[n:]
	}
	return nil
}

// withContentMD5 adds a Content-MD5 header to a DeleteObjects request. S3
// accepts the CRC32 checksum the SDK sends instead, but several S3-compatible
// servers still insist on Content-MD5 for this one operation.
func withContentMD5(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Build.Add(middleware.BuildMiddlewareFunc("ltxvfsContentMD5", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			req, ok := in.Request.(*smithyhttp.Request)
			if ok && req.IsStreamSeekable() && req.Header.Get("Content-MD5") == "" {
				h := md5.New()
				if _, err := io.Copy(h, req.GetStream()); err != nil {
					return middleware.BuildOutput{}, middleware.Metadata{}, fmt.Errorf("compute Content-MD5: %w", err)
				}
				if err := req.RewindStream(); err != nil {
					return middleware.BuildOutput{}, middleware.Metadata{}, fmt.Errorf("compute Content-MD5: %w", err)
				}
				req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(h.Sum(nil)))
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
	})
}
