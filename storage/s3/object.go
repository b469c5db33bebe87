package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ltxvfs/ltxvfs/storage"
)

// Objects live under <prefix>/ltxvfs/ (storage.ObjectDirPrefix), one S3
// object each, with S3's own ETags and conditional requests: a GET with
// If-None-Match, a PUT with If-None-Match: * (create) or If-Match: <ETag>
// (compare-and-swap). S3 orders conditional writes to one key: of two
// writers that read the same version, one gets 412 Precondition Failed,
// or on AWS 409 ConditionalRequestConflict when both were in flight at
// once.
//
// A server that ignores the conditions of a PUT replaces the object
// unconditionally, which no answer tells: a writer takes the replica's
// lease first, and AcquireLease refuses such a server (see probedLease).
// Fencing a writer whose lease ran out is beyond these requests.

// objectKey is the key of an object.
func (c *Client) objectKey(name string) string {
	return storage.ObjectDirPrefix(c.prefix) + name
}

// ReadObject reads an object with one GET, with If-None-Match when asked.
func (c *Client) ReadObject(ctx context.Context, name string, opts storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	info := storage.ObjectInfo{Name: name}
	if err := storage.CheckObjectName(name); err != nil {
		return nil, info, err
	}
	key := c.objectKey(name)
	in := &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)}
	if opts.IfNoneMatch != "" {
		in.IfNoneMatch = aws.String(opts.IfNoneMatch)
	}
	out, err := c.s3.GetObject(ctx, in)
	switch {
	case err == nil:
	case isNotModified(err):
		// The SDK reports a 304 as an error.
		info.ETag = opts.IfNoneMatch
		return nil, info, fmt.Errorf("read object %s: %w", c.name(key), storage.ErrNotModified)
	case isNotFound(err):
		return nil, info, fmt.Errorf("read object %s: %w: %w", c.name(key), os.ErrNotExist, err)
	default:
		return nil, info, fmt.Errorf("read object %s: %w", c.name(key), classify(err, c.bucket))
	}
	if out.ContentLength == nil {
		out.Body.Close()
		return nil, info, fmt.Errorf("read object %s: the answer has no Content-Length", c.name(key))
	}
	info.Size = aws.ToInt64(out.ContentLength)
	info.ETag = aws.ToString(out.ETag)
	info.ModTime = aws.ToTime(out.LastModified).UTC()
	if opts.IfNoneMatch != "" && info.ETag == opts.IfNoneMatch {
		// A server that ignores If-None-Match sends the body anyway.
		out.Body.Close()
		return nil, info, fmt.Errorf("read object %s: %w", c.name(key), storage.ErrNotModified)
	}
	return out.Body, info, nil
}

// isNotModified reports a 304 answer to a conditional GET.
func isNotModified(err error) bool {
	code, status := errorCode(err)
	return status == http.StatusNotModified || code == "NotModified"
}

// WriteObject uploads an object with one PutObject, whole or not at all,
// with If-None-Match: * or If-Match: <ETag> as asked. A missing object is a
// failed If-Match (AWS answers it 404).
func (c *Client) WriteObject(ctx context.Context, name string, r io.Reader, opts storage.WriteOptions) (storage.ObjectInfo, error) {
	if err := storage.CheckObjectName(name); err != nil {
		return storage.ObjectInfo{}, err
	}
	key := c.objectKey(name)
	if opts.IfNoneMatch && opts.IfMatch != "" {
		return storage.ObjectInfo{}, fmt.Errorf("write object %s: both IfNoneMatch and IfMatch given", c.name(key))
	}
	body, size, cleanup, err := spool(ctx, r, c.spoolPrefix()+"*.ltx")
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("write object %s: %w", c.name(key), err)
	}
	defer cleanup()

	in := &s3.PutObjectInput{
		Bucket:        aws.String(c.bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
	}
	conditional := opts.IfNoneMatch || opts.IfMatch != ""
	if opts.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	} else if opts.IfMatch != "" {
		in.IfMatch = aws.String(opts.IfMatch)
	}
	out, err := c.s3.PutObject(ctx, in)
	if err != nil {
		code, status := errorCode(err)
		switch {
		case conditional && (isPreconditionFailed(err) || opts.IfMatch != "" && isNotFound(err)):
			return storage.ObjectInfo{}, fmt.Errorf("write object %s %s: %w: %w", c.name(key), opts, storage.ErrPreconditionFailed, err)
		case conditional && (code == "NotImplemented" || status == http.StatusNotImplemented):
			return storage.ObjectInfo{}, fmt.Errorf("write object %s %s: the server does not implement conditional writes: %w: %w: %w", c.name(key), opts, storage.ErrNoConditionalWrites, errors.ErrUnsupported, err)
		}
		return storage.ObjectInfo{}, fmt.Errorf("write object %s: %w", c.name(key), classify(err, c.bucket))
	}
	return storage.ObjectInfo{
		Name:    name,
		Size:    size,
		ETag:    aws.ToString(out.ETag),
		ModTime: time.Now().UTC(), // by this machine's clock: a PUT's answer has no Last-Modified
	}, nil
}

// ListObjects lists the objects under a folder with ListObjectsV2, a
// thousand per request. Keys that are not object names are skipped.
func (c *Client) ListObjects(ctx context.Context, dir string) ([]storage.ObjectInfo, error) {
	if err := storage.CheckObjectDir(dir); err != nil {
		return nil, err
	}
	base := storage.ObjectDirPrefix(c.prefix)
	prefix := base
	if dir != "" {
		prefix += dir + "/"
	}
	objs, err := c.listObjects(ctx, prefix, "", "")
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	infos := make([]storage.ObjectInfo, 0, len(objs))
	for _, obj := range objs {
		name, ok := strings.CutPrefix(aws.ToString(obj.Key), base)
		if !ok || storage.CheckObjectName(name) != nil {
			continue
		}
		infos = append(infos, storage.ObjectInfo{
			Name:    name,
			Size:    aws.ToInt64(obj.Size),
			ETag:    aws.ToString(obj.ETag),
			ModTime: aws.ToTime(obj.LastModified).UTC(),
		})
	}
	// S3 lists keys in byte order; not every compatible server does.
	slices.SortFunc(infos, func(a, b storage.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}

// DeleteObjects removes objects with DeleteObjects, a thousand per
// request.
func (c *Client) DeleteObjects(ctx context.Context, names []string) error {
	keys := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if err := storage.CheckObjectName(name); err != nil {
			return err
		}
		if key := c.objectKey(name); !seen[key] {
			seen[key] = true
			keys = append(keys, key)
		}
	}
	return c.deleteKeys(ctx, keys)
}
