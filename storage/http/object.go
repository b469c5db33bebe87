package httpstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ltxvfs/ltxvfs/storage"
)

// The ETag that ReadObject returns is built from the answer's validators,
// so that the next read's IfNoneMatch says what condition to send:
//
//	"..." or W/"..."   the server's ETag, sent back as If-None-Match
//	lm:<unix seconds>  its Last-Modified, where it gives no ETag, sent
//	                   back as If-Modified-Since
//	fresh:<either>     validators too young to trust (see Options.Settle),
//	                   or none at all ("fresh:none"): the next read is
//	                   unconditional
//
// A server that builds its validators from a file's mtime in whole seconds
// gives a manifest rewritten within the same second, at the same size,
// the ETag of the version before: a reader that had that version would be
// told 304 until the next change. Until the server's clock (its Date) is
// Settle past the Last-Modified, no later write can share it, so reads
// stay unconditional until then; and a cache on the way (a CDN) may serve
// the version before for as long as the answer's Cache-Control lets it
// (s-maxage, else max-age), which is added. The cost is a full GET of a
// small object for a few seconds after each change, where a conditional
// one would have been answered 304.
const (
	lmPrefix    = "lm:"
	freshPrefix = "fresh:"
)

// maxUnsizedObject bounds an object whose answer has no Content-Length,
// which is read whole to learn its size: the largest hint a reader reads
// (its checksums and copied frames) is well under it.
const maxUnsizedObject = 256<<20 + 1<<20

// ReadObject reads an object with one GET, conditional when opts.IfNoneMatch
// is an ETag this client returned (see above).
func (c *Client) ReadObject(ctx context.Context, name string, opts storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	info := storage.ObjectInfo{Name: name}
	if err := storage.CheckObjectName(name); err != nil {
		return nil, info, err
	}
	u := c.objectURL(name)
	what := "read object " + name + " at"
	hdr := conditionHeader(opts.IfNoneMatch)
	resp, err := c.get(ctx, what, u, hdr, false)
	if err != nil {
		return nil, info, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		discard(resp)
		if hdr == nil {
			return nil, info, fmt.Errorf("%s %s: the server answered %s to a GET without a condition", what, u, resp.Status)
		}
		info.ETag = opts.IfNoneMatch
		return nil, info, fmt.Errorf("%s %s: %w", what, u, storage.ErrNotModified)
	default:
		return nil, info, c.statusError(resp, what, u)
	}
	if err := checkBody(resp, what, u); err != nil {
		discard(resp)
		return nil, info, err
	}
	info.ETag = c.validator(resp.Header)
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		info.ModTime = lm.UTC()
	}
	if hdr != nil && info.ETag == opts.IfNoneMatch {
		// A server that ignores the condition sends the body anyway.
		discard(resp)
		return nil, info, fmt.Errorf("%s %s: %w", what, u, storage.ErrNotModified)
	}
	body := &bodyReader{rc: resp.Body, url: u}
	if resp.ContentLength >= 0 {
		info.Size = resp.ContentLength
		return storage.ExactReader(body, info.Size, u), info, nil
	}
	b, err := io.ReadAll(io.LimitReader(body, maxUnsizedObject+1))
	resp.Body.Close()
	if err != nil {
		return nil, info, err
	}
	if len(b) > maxUnsizedObject {
		return nil, info, fmt.Errorf("%s %s: no Content-Length, and larger than %d bytes", what, u, maxUnsizedObject)
	}
	info.Size = int64(len(b))
	return io.NopCloser(bytes.NewReader(b)), info, nil
}

// conditionHeader is the condition to send for an ETag of ours, or nil.
func conditionHeader(etag string) http.Header {
	switch {
	case strings.HasPrefix(etag, `"`), strings.HasPrefix(etag, `W/"`):
		return http.Header{"If-None-Match": {etag}}
	case strings.HasPrefix(etag, lmPrefix):
		s, err := strconv.ParseInt(etag[len(lmPrefix):], 10, 64)
		if err != nil {
			return nil
		}
		return http.Header{"If-Modified-Since": {time.Unix(s, 0).UTC().Format(http.TimeFormat)}}
	}
	return nil
}

// validator builds the ETag of an answer (see above).
func (c *Client) validator(h http.Header) string {
	etag := h.Get("ETag")
	lm, lmErr := http.ParseTime(h.Get("Last-Modified"))
	date, dateErr := http.ParseTime(h.Get("Date"))
	var tag string
	switch {
	case etag != "":
		tag = etag
	case lmErr == nil:
		tag = lmPrefix + strconv.FormatInt(lm.Unix(), 10)
	default:
		return freshPrefix + "none"
	}
	// An ETag without a Last-Modified gives nothing to judge it by: it is
	// trusted, as S3's content hashes deserve.
	settled := lmErr != nil || dateErr == nil && !date.Before(lm.Add(c.opts.Settle+cacheTTL(h)))
	if !settled {
		return freshPrefix + tag
	}
	return tag
}

// maxCacheTTL bounds the cache lifetime validator adds to Settle: an
// object cached long (a misconfigured manifest) is read unconditionally
// for that long after each change, no longer.
const maxCacheTTL = time.Minute

// cacheTTL is how long caches may keep an answer, from its Cache-Control:
// s-maxage (shared caches), else max-age.
func cacheTTL(h http.Header) time.Duration {
	var maxAge, sMaxAge int64 = -1, -1
	for _, cc := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(cc, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(d), "=")
			n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
			if err != nil || n < 0 {
				continue
			}
			switch strings.ToLower(k) {
			case "max-age":
				maxAge = n
			case "s-maxage":
				sMaxAge = n
			}
		}
	}
	n := sMaxAge
	if n < 0 {
		n = maxAge
	}
	if n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, maxCacheTTL)
}
