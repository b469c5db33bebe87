package s3

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// OpenLTXFile opens a ranged reader over one object with one GET.
func (c *Client) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	if err := storage.CheckLevel(level); err != nil {
		return nil, err
	}
	key := c.key(level, minTXID, maxTXID)
	name := c.name(key)
	if offset < 0 || size < 0 {
		return nil, fmt.Errorf("open %s: invalid range offset=%d size=%d", name, offset, size)
	}

	in := &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)}
	ranged := offset > 0 || size > 0
	if ranged {
		r := "bytes=" + strconv.FormatInt(offset, 10) + "-"
		if size > 0 {
			r += strconv.FormatInt(offset+size-1, 10)
		}
		in.Range = aws.String(r)
	}
	out, err := c.s3.GetObject(ctx, in)
	if err != nil {
		return nil, c.readError(err, name, offset)
	}
	// A server that ignores Range answers with the whole object: taking
	// its first bytes for the range asked would serve the wrong page.
	if ranged && !startsAt(aws.ToString(out.ContentRange), offset) {
		out.Body.Close()
		return nil, fmt.Errorf("open %s: asked for bytes from %d, got Content-Range %q", name, offset, aws.ToString(out.ContentRange))
	}
	return storage.ExactReader(out.Body, size, name), nil
}

func (c *Client) readError(err error, name string, offset int64) error {
	code, status := errorCode(err)
	switch {
	case isNotFound(err):
		return fmt.Errorf("open %s: %w: %w", name, os.ErrNotExist, err)
	case code == "InvalidRange" || status == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("open %s: range starts at %d, past the end of the file: %w", name, offset, err)
	}
	return fmt.Errorf("open %s: %w", name, classify(err, c.bucket))
}

// startsAt reports whether a Content-Range header ("bytes 10-29/4096")
// describes a range that starts at offset.
func startsAt(contentRange string, offset int64) bool {
	rest, ok := strings.CutPrefix(contentRange, "bytes ")
	if !ok {
		return false
	}
	start, _, ok := strings.Cut(rest, "-")
	n, err := strconv.ParseInt(start, 10, 64)
	return ok && err == nil && n == offset
}
