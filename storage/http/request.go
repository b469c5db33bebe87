package httpstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// retryBaseDelay is the first backoff: a page read waits on every retry,
// so it starts small and doubles.
const retryBaseDelay = 100 * time.Millisecond

// StatusError is an answer that is not what was asked for, after every
// retry it was worth.
type StatusError struct {
	Code   int
	Status string // "403 Forbidden"
}

func (e *StatusError) Error() string { return "HTTP " + e.Status }

// get sends a GET to u with the client's headers and hdr (a range, a
// condition), retrying connection failures, 5xx and 429 up to MaxAttempts,
// and, when notFoundRetry is set, a 404 for up to NotFoundRetry. It
// returns the last answer: the caller checks its status. Errors name what
// was done (what) and the URL.
func (c *Client) get(ctx context.Context, what, u string, hdr http.Header, notFoundRetry bool) (*http.Response, error) {
	var firstNotFound time.Time
	failures, notFounds := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, u, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, u, err)
		}
		for name, values := range c.header {
			req.Header[name] = values
		}
		for name, values := range hdr {
			req.Header[name] = values
		}
		resp, err := c.hc.Do(req)
		var delay time.Duration
		switch {
		case err != nil:
			err = explain(unwrapURLError(err))
			failures++
			if ctx.Err() != nil || !retryable(err) || failures >= c.opts.MaxAttempts {
				return nil, fmt.Errorf("%s %s%s: %w", what, u, attempts(failures), err)
			}
			delay = c.backoff(failures)
		case resp.StatusCode == http.StatusNotFound && notFoundRetry && c.opts.NotFoundRetry > 0:
			if firstNotFound.IsZero() {
				firstNotFound = time.Now()
			}
			left := c.opts.NotFoundRetry - time.Since(firstNotFound)
			if left <= 0 {
				return resp, nil
			}
			discard(resp)
			notFounds++
			delay = min(c.backoff(notFounds), left)
		case retryableStatus(resp.StatusCode):
			failures++
			if failures >= c.opts.MaxAttempts {
				return resp, nil
			}
			delay = c.backoff(failures)
			if ra, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
				delay = min(max(ra, delay), c.opts.MaxBackoff)
			}
			discard(resp)
		default:
			return resp, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%s %s: %w", what, u, ctx.Err())
		case <-t.C:
		}
	}
}

func attempts(n int) string {
	if n <= 1 {
		return ""
	}
	return " (" + strconv.Itoa(n) + " attempts)"
}

// backoff doubles the delay with every failure up to MaxBackoff, with
// "equal jitter": half of it fixed, half random, so that the many reads
// of one burst of failures spread out.
func (c *Client) backoff(failures int) time.Duration {
	d := c.opts.MaxBackoff
	if failures <= 20 {
		d = min(retryBaseDelay<<max(failures-1, 0), d)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// retryableStatus: the server or a proxy failed or is overloaded, and the
// same GET may succeed later.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryable reports a failure that another attempt may not meet: not a
// refused redirect nor a certificate that does not verify.
func retryable(err error) bool {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return !errors.Is(err, errRedirect) && !errors.As(err, &unknown) && !errors.As(err, &hostname) &&
		!errors.As(err, &invalid) && !errors.As(err, &verify)
}

// explain puts the likely fix in front of a certificate the client does not
// trust.
func explain(err error) error {
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return fmt.Errorf("the server's certificate is signed by a CA this machine does not trust (name its PEM with the URL's ca-file= parameter, or SSL_CERT_FILE): %w", err)
	}
	return err
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// discard reads a little of an answer that is not used, so that its
// connection can be kept, and closes it.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// unwrapURLError drops url.Error's "Get <url>:" (the caller names the URL).
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// statusError is the error of an answer whose status the caller did not
// expect. The answer is closed.
func (c *Client) statusError(resp *http.Response, what, u string) error {
	discard(resp)
	err := &StatusError{Code: resp.StatusCode, Status: resp.Status}
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		return fmt.Errorf("%s %s: %w: %w", what, u, err, os.ErrNotExist)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%s %s: %w: access denied (check the URL, and the token or headers its bearer-token-env= or header-env= name)", what, u, err)
	}
	if retryableStatus(resp.StatusCode) {
		return fmt.Errorf("%s %s (%d attempts): %w", what, u, c.opts.MaxAttempts, err)
	}
	return fmt.Errorf("%s %s: %w", what, u, err)
}

// checkBody refuses an answer whose body cannot be a replica's file: an
// HTML page (a site's index or error page served for any path), or a body
// in a content encoding (its bytes are not the file's).
func checkBody(resp *http.Response, what, u string) error {
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return fmt.Errorf("%s %s: the answer is encoded (Content-Encoding %s), though none was asked for", what, u, enc)
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && (mt == "text/html" || mt == "application/xhtml+xml") {
		return fmt.Errorf("%s %s: the server answered with an HTML page (Content-Type %s), not a file of the replica: is this the URL of the replica, the folder that holds ltx/?", what, u, ct)
	}
	return nil
}
