package httpstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// MaxIgnoredRange is the largest whole file that a ranged read accepts
// from a server that ignores Range (answers 200 with the whole file):
// the bytes before the range are read and dropped. A larger file is an
// error: reading a snapshot whole for every page would be worse than
// failing.
const MaxIgnoredRange = 1 << 20

// OpenLTXFile reads size bytes of one file from offset (to its end when
// size is 0) with one GET, ranged unless the whole file is asked for. A
// 404 is asked again for up to NotFoundRetry before it is reported.
func (c *Client) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	if err := storage.CheckLevel(level); err != nil {
		return nil, err
	}
	u := c.fileURL(level, minTXID, maxTXID)
	what := "open " + storage.FileName(level, minTXID, maxTXID) + " at"
	if offset < 0 || size < 0 {
		return nil, fmt.Errorf("%s %s: invalid range offset=%d size=%d", what, u, offset, size)
	}
	hdr := http.Header{}
	ranged := offset > 0 || size > 0
	if ranged {
		r := "bytes=" + strconv.FormatInt(offset, 10) + "-"
		if size > 0 {
			r += strconv.FormatInt(offset+size-1, 10)
		}
		hdr.Set("Range", r)
	}
	resp, err := c.get(ctx, what, u, hdr, true)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusPartialContent, http.StatusOK:
	case http.StatusRequestedRangeNotSatisfiable:
		discard(resp)
		return nil, fmt.Errorf("%s %s: range starts at %d, past the end of the file (%s)", what, u, offset, resp.Status)
	default:
		err := c.statusError(resp, what, u)
		if resp.StatusCode == http.StatusNotFound && c.opts.NotFoundRetry > 0 {
			err = fmt.Errorf("%w (still missing after asking again for %v)", err, c.opts.NotFoundRetry)
		}
		return nil, err
	}
	if err := checkBody(resp, what, u); err != nil {
		discard(resp)
		return nil, err
	}
	body := &bodyReader{rc: resp.Body, url: u}
	if resp.StatusCode == http.StatusPartialContent {
		n, err := checkContentRange(resp, ranged, offset)
		if err != nil {
			discard(resp)
			return nil, fmt.Errorf("%s %s: %w", what, u, err)
		}
		if size == 0 {
			size = n // to the end, which the server says is n bytes on
		}
		return storage.ExactReader(body, size, u), nil
	}

	// 200: the whole file.
	if !ranged {
		return storage.ExactReader(body, max(resp.ContentLength, 0), u), nil
	}
	// A server (or a proxy) that ignores Range: taking the first bytes
	// of the file for the range asked would serve the wrong page.
	if resp.ContentLength < 0 || resp.ContentLength > MaxIgnoredRange {
		discard(resp)
		return nil, fmt.Errorf("%s %s: asked for bytes from %d, the server ignored the Range header and sent the whole file (%s, %s): ltxvfs needs a server that answers ranged GETs with 206 Partial Content (does a proxy in front drop Range?)", what, u, offset, resp.Status, lengthText(resp.ContentLength))
	}
	if offset >= resp.ContentLength {
		discard(resp)
		return nil, fmt.Errorf("%s %s: range starts at %d, past the end of the %d-byte file", what, u, offset, resp.ContentLength)
	}
	if !c.warnedRange.Swap(true) {
		c.log.Warn("the replica's server ignores Range headers and sends whole files: small files are read whole and the bytes before each range dropped; larger ones fail", "replica", c.base, "max_file_bytes", MaxIgnoredRange)
	}
	if _, err := io.CopyN(io.Discard, body, offset); err != nil {
		resp.Body.Close()
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%s %s: skip to byte %d of the whole file sent: %w", what, u, offset, err)
	}
	if size == 0 {
		size = resp.ContentLength - offset
	}
	return storage.ExactReader(body, size, u), nil
}

func lengthText(n int64) string {
	if n < 0 {
		return "of unknown length"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// checkContentRange checks that a 206 answers the range asked for, from
// offset, and returns the number of bytes it holds.
func checkContentRange(resp *http.Response, ranged bool, offset int64) (int64, error) {
	cr := resp.Header.Get("Content-Range")
	if !ranged {
		return 0, fmt.Errorf("asked for the whole file, got 206 Partial Content (Content-Range %q)", cr)
	}
	start, end, ok := parseContentRange(cr)
	if !ok || start != offset {
		return 0, fmt.Errorf("asked for bytes from %d, got Content-Range %q", offset, cr)
	}
	n := end - start + 1
	if resp.ContentLength >= 0 && resp.ContentLength != n {
		return 0, fmt.Errorf("Content-Range %q holds %d bytes, Content-Length says %d", cr, n, resp.ContentLength)
	}
	return n, nil
}

// parseContentRange reads "bytes <start>-<end>/<total or *>".
func parseContentRange(v string) (start, end int64, ok bool) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, false
	}
	span, _, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(span, "-")
	if !ok {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}

// bodyReader names the URL in the errors of a body, and says what an
// unexpected EOF means there.
type bodyReader struct {
	rc  io.ReadCloser
	url string
}

func (r *bodyReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	switch {
	case err == nil || err == io.EOF:
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("read %s: the body ended before the length the server announced: %w", r.url, err)
	default:
		err = fmt.Errorf("read %s: %w", r.url, err)
	}
	return n, err
}

func (r *bodyReader) Close() error { return r.rc.Close() }
