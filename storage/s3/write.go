package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

const (
	// maxPutSize is the largest object one PutObject may create.
	maxPutSize = 5 << 30

	// memorySpoolSize is the largest body held in memory for an upload;
	// larger ones (snapshots, high compactions) go to a temp file.
	memorySpoolSize = 8 << 20
)

// WriteLTXFile uploads a file with a single PutObject, so that it becomes
// visible whole or not at all, with its header timestamp in the
// litestream-timestamp metadata.
//
// The PUT carries If-None-Match: *, so that it never replaces an object:
// a 412 means that the key exists, and the object there is read back and
// compared with the body (the SDK's own retry of a PUT that landed finds
// its own bytes: a success), anything else fails with
// storage.ErrFileExists. A server that answered 501 to the lease's
// conditional PUT (see AcquireLease) gets unconditional PUTs instead: it
// would refuse every conditional one, and the writer was told (see
// storage.ErrNoConditionalWrites).
//
// The body is read whole before the request: SigV4 signs the payload's hash
// and a retry resends it, so the SDK needs a length and a seekable body.
// Files up to 8 MiB (every L0 file in practice) stay in memory, larger ones
// go through a temp file rather than the heap.
func (c *Client) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if err := storage.CheckLevel(level); err != nil {
		return nil, err
	}
	key := c.key(level, minTXID, maxTXID)
	name := c.name(key)

	hdr, r, err := ltx.PeekHeader(r)
	if err != nil {
		return nil, fmt.Errorf("write %s: read LTX header: %w", name, err)
	}
	if err := hdr.Validate(); err != nil {
		return nil, fmt.Errorf("write %s: invalid LTX header: %w", name, err)
	}
	if hdr.MinTXID != minTXID || hdr.MaxTXID != maxTXID {
		return nil, fmt.Errorf("write %s: header holds TXIDs %s-%s", name, hdr.MinTXID, hdr.MaxTXID)
	}
	timestamp := time.UnixMilli(hdr.Timestamp).UTC()

	body, size, cleanup, err := spool(ctx, r, c.spoolPrefix()+"*.ltx")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	defer cleanup()

	if err := c.create(ctx, level, minTXID, maxTXID, body, size, timestamp); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	return &ltx.FileInfo{
		Level:     level,
		MinTXID:   minTXID,
		MaxTXID:   maxTXID,
		Size:      size,
		CreatedAt: timestamp,
	}, nil
}

// createAttempts bounds the PUTs of one create that keep finding the key
// taken and then gone (removed meanwhile, or on AWS a 409 for a
// conditional PUT racing another still in flight).
const createAttempts = 3

// create PUTs body as the file's key unless the key exists, and then
// compares the object there with body (see WriteLTXFile).
func (c *Client) create(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, body io.ReadSeeker, size int64, timestamp time.Time) error {
	key := c.key(level, minTXID, maxTXID)
	conditional := !c.noConditions.Load()
	for attempt := 1; ; attempt++ {
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return err
		}
		in := &s3.PutObjectInput{
			Bucket:        aws.String(c.bucket),
			Key:           aws.String(key),
			Body:          body,
			ContentLength: aws.Int64(size),
			Metadata:      map[string]string{MetadataKeyTimestamp: timestamp.Format(ltx.RFC3339Milli)},
		}
		if conditional {
			in.IfNoneMatch = aws.String("*")
		}
		_, err := c.s3.PutObject(ctx, in)
		switch {
		case err == nil:
			return nil
		case !conditional || !isPreconditionFailed(err):
			if code, status := errorCode(err); conditional && (code == "NotImplemented" || status == http.StatusNotImplemented) {
				return fmt.Errorf("the server does not implement conditional writes (If-None-Match): %w: %w: %w", storage.ErrNoConditionalWrites, errors.ErrUnsupported, err)
			}
			return classify(err, c.bucket)
		}
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return err
		}
		same, err := storage.SameLTXFile(ctx, c, level, minTXID, maxTXID, body)
		switch {
		case errors.Is(err, os.ErrNotExist) && attempt < createAttempts:
			continue
		case err != nil:
			return fmt.Errorf("the key exists (412 to If-None-Match): %w", err)
		case !same:
			return storage.ErrFileExists
		}
		return nil // our own PUT landed: the SDK retried it, or an earlier call's did
	}
}

var errTooLarge = errors.New("file exceeds the 5 GiB limit of a single S3 PUT")

// spool reads r to its end into memory or, past memorySpoolSize, into a temp
// file, and returns it as a seekable body. cleanup releases it.
func spool(ctx context.Context, r io.Reader, pattern string) (body io.ReadSeeker, size int64, cleanup func(), err error) {
	r = storage.ContextReader(ctx, r)
	var buf bytes.Buffer
	n, err := io.CopyN(&buf, r, memorySpoolSize+1)
	if errors.Is(err, io.EOF) {
		return bytes.NewReader(buf.Bytes()), n, func() {}, nil
	} else if err != nil {
		return nil, 0, nil, err
	}

	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("spool upload: %w", err)
	}
	cleanup = func() {
		f.Close()
		os.Remove(f.Name())
	}
	if _, err := buf.WriteTo(f); err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("spool upload: %w", err)
	}
	m, err := io.CopyN(f, r, maxPutSize-n+1)
	if err != nil && !errors.Is(err, io.EOF) {
		cleanup()
		return nil, 0, nil, err
	}
	if n+m > maxPutSize {
		cleanup()
		return nil, 0, nil, errTooLarge
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("spool upload: %w", err)
	}
	return f, n + m, cleanup, nil
}
