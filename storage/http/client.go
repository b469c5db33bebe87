package httpstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

func init() {
	open := func(_ context.Context, u *storage.URL) (storage.Client, error) { return New(u, Options{}) }
	storage.Register("http", open)
	storage.Register("https", open)
}

// Defaults for Options and for the URL's parameters.
const (
	DefaultMaxAttempts    = 5
	DefaultMaxBackoff     = 2 * time.Second
	DefaultTimeout        = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultNotFoundRetry  = 3 * time.Second
	DefaultSettle         = 2 * time.Second
)

// MaxConnsPerHost bounds the connections to one server. A reader answers
// SQLite's page reads with many small ranged GETs at once (an index build
// has up to 128 in flight); below this many, each gets a connection of
// its own, kept alive for the next.
const MaxConnsPerHost = 128

// Errors of what a web server cannot do. Both match errors.ErrUnsupported.
var (
	ErrNotListable = fmt.Errorf("a web server cannot list a replica's files: an HTTP replica is opened and followed through the manifest ltx-writer publishes beside its files: %w", errors.ErrUnsupported)
	ErrReadOnly    = fmt.Errorf("an HTTP replica is read-only: write with ltx-writer replicate to the directory or bucket the web server serves: %w", errors.ErrUnsupported)
)

// Options tune a Client beyond what its URL says. The zero value is what
// storage.Open uses.
type Options struct {
	// Transport replaces the default transport (a pool sized for
	// MaxConnsPerHost requests in flight, the URL's timeouts and CA
	// bundle). The redirect policy and the request headers stay the
	// Client's.
	Transport http.RoundTripper

	// Header is sent with every request, beside the headers the URL names
	// (header-env=, bearer-token-env=). Its values are never shown.
	Header http.Header

	// MaxAttempts bounds the attempts of one request on a retryable
	// failure (5xx, 429, a broken or refused connection, a timeout):
	// DefaultMaxAttempts when 0; 1 disables retries.
	MaxAttempts int
	// MaxBackoff caps the delay between two attempts, a Retry-After
	// included; DefaultMaxBackoff when 0.
	MaxBackoff time.Duration

	// NotFoundRetry is how long an LTX file that answers 404 is asked for
	// again before it is reported missing (a CDN's edge may not have a
	// file the manifest names yet). When 0, the URL's not-found-retry,
	// else DefaultNotFoundRetry; negative disables the retry.
	NotFoundRetry time.Duration

	// Settle is how long after its Last-Modified an object's validators
	// are trusted for a conditional read; until then its reads are
	// unconditional. Servers that build validators from a file's mtime
	// in whole seconds (nginx's ETag, every Last-Modified) give two
	// versions written within the same second the same ones, so that a
	// conditional read could keep the first for good. DefaultSettle when
	// 0.
	Settle time.Duration

	// Logger receives warnings (a server that ignores Range); the default
	// logger when nil.
	Logger *slog.Logger
}

var _ storage.Client = (*Client)(nil)

// Client is a read-only replica on a web server.
type Client struct {
	base     string // the replica's URL, without parameters or trailing slash
	host     string // its host[:port], where the headers may go
	layoutS3 bool
	hc       *http.Client
	header   http.Header // secret: never shown
	opts     Options
	log      *slog.Logger

	warnedRange atomic.Bool
}

// New makes a client for the http(s) replica u. It reads the headers the
// URL names from the environment and the CA bundle from disk; nothing is
// requested until the first read.
func New(u *storage.URL, opts Options) (*Client, error) {
	if u == nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%w: the http backend needs an http:// or https:// URL", storage.ErrInvalidURL)
	}
	base, err := url.Parse(u.BaseURL)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("%w %q: no base URL (not parsed by storage.ParseURL?)", storage.ErrInvalidURL, u)
	}
	header, err := requestHeader(u.HTTP, opts.Header)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", storage.ErrInvalidURL, err)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.NotFoundRetry == 0 {
		opts.NotFoundRetry = u.HTTP.NotFoundRetry
	}
	if opts.NotFoundRetry == 0 {
		opts.NotFoundRetry = DefaultNotFoundRetry
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	c := &Client{base: u.BaseURL, host: base.Host, layoutS3: u.HTTP.LayoutS3, header: header, opts: opts, log: opts.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	tr := opts.Transport
	if tr == nil {
		if tr, err = newTransport(u.HTTP); err != nil {
			return nil, fmt.Errorf("%w: %w", storage.ErrInvalidURL, err)
		}
	}
	c.hc = &http.Client{Transport: tr, CheckRedirect: c.checkRedirect}
	return c, nil
}

// String is the replica's URL, without its parameters.
func (c *Client) String() string { return c.base }

// CloseIdleConnections closes the kept-alive connections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// fileURL is the URL of one LTX file, in the file backend's layout or,
// with layout=s3, in the s3 backend's (the URL's path is the prefix).
func (c *Client) fileURL(level int, minTXID, maxTXID ltx.TXID) string {
	if c.layoutS3 {
		return c.base + "/" + fmt.Sprintf("%04x", level) + "/" + ltx.FormatFilename(minTXID, maxTXID)
	}
	return c.base + "/ltx/" + strconv.Itoa(level) + "/" + ltx.FormatFilename(minTXID, maxTXID)
}

// objectURL is the URL of an object; object names hold nothing a URL path
// must escape (see storage.CheckObjectName).
func (c *Client) objectURL(name string) string {
	if c.layoutS3 {
		return c.base + "/" + storage.ObjectDir + "/" + name
	}
	return c.base + "/ltx/" + storage.ObjectDir + "/" + name
}

// LTXFiles fails with ErrNotListable.
func (c *Client) LTXFiles(_ context.Context, level int, _ ltx.TXID, _ bool) (ltx.FileIterator, error) {
	return nil, fmt.Errorf("list L%d of %s: %w", level, c, ErrNotListable)
}

// ListObjects fails with ErrNotListable.
func (c *Client) ListObjects(_ context.Context, dir string) ([]storage.ObjectInfo, error) {
	return nil, fmt.Errorf("list objects %q of %s: %w", dir, c, ErrNotListable)
}

// WriteLTXFile fails with ErrReadOnly.
func (c *Client) WriteLTXFile(_ context.Context, level int, minTXID, maxTXID ltx.TXID, _ io.Reader) (*ltx.FileInfo, error) {
	return nil, fmt.Errorf("write %s to %s: %w", storage.FileName(level, minTXID, maxTXID), c, ErrReadOnly)
}

// DeleteLTXFiles fails with ErrReadOnly.
func (c *Client) DeleteLTXFiles(_ context.Context, files []*ltx.FileInfo) error {
	return fmt.Errorf("delete %d files from %s: %w", len(files), c, ErrReadOnly)
}

// DeleteAll fails with ErrReadOnly.
func (c *Client) DeleteAll(context.Context) error {
	return fmt.Errorf("delete %s: %w", c, ErrReadOnly)
}

// WriteObject fails with ErrReadOnly.
func (c *Client) WriteObject(_ context.Context, name string, _ io.Reader, _ storage.WriteOptions) (storage.ObjectInfo, error) {
	return storage.ObjectInfo{}, fmt.Errorf("write object %s to %s: %w", name, c, ErrReadOnly)
}

// DeleteObjects fails with ErrReadOnly.
func (c *Client) DeleteObjects(_ context.Context, names []string) error {
	return fmt.Errorf("delete %d objects from %s: %w", len(names), c, ErrReadOnly)
}
