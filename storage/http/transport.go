package httpstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ltxvfs/ltxvfs/storage"
)

// maxRedirects bounds a chain of redirects (Go's default is 10): a
// replica moved once or put behind a CDN's canonical host needs one or two.
const maxRedirects = 5

// newTransport is the default transport: a pool sized for many ranged
// reads in flight, bounds on each step that can hang (dial, TLS handshake,
// the wait for response headers), and the URL's CA bundle. No overall
// timeout: a large read may take long, and the caller's context bounds it.
func newTransport(p storage.HTTPParams) (*http.Transport, error) {
	connect := p.ConnectTimeout
	if connect <= 0 {
		connect = DefaultConnectTimeout
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2 * MaxConnsPerHost,
		MaxIdleConnsPerHost:   MaxConnsPerHost,
		MaxConnsPerHost:       MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		// LTX files are compressed already, and a transparently gunzipped
		// body has no length to check a read against.
		DisableCompression: true,
	}
	if p.CAFile != "" {
		pemBytes, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca-file: %w", err)
		}
		// The system's roots (which SSL_CERT_FILE and SSL_CERT_DIR
		// replace) stay trusted: a redirect may lead to a public host.
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("ca-file %s holds no PEM certificate", p.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr, nil
}

// reservedHeaders are set by the client on each request; the environment
// may not set them.
var reservedHeaders = []string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Range", "If-Unmodified-Since", "Content-Length", "Transfer-Encoding", "Connection", "Accept-Encoding", "Host"}

// requestHeader builds the headers sent with every request: extra, then
// those of the environment variables the URL names. Errors name the
// variable, never its value.
func requestHeader(p storage.HTTPParams, extra http.Header) (http.Header, error) {
	h := extra.Clone()
	if h == nil {
		h = http.Header{}
	}
	set := func(param, env, name, value string) error {
		if !validHeaderName(name) {
			return fmt.Errorf("%s=%s: the variable's value is not 'Header-Name: value' (its value is not shown)", param, env)
		}
		if !validHeaderValue(value) {
			return fmt.Errorf("%s=%s: the variable's value holds a control character (a newline?) (its value is not shown)", param, env)
		}
		for _, r := range reservedHeaders {
			if strings.EqualFold(name, r) {
				return fmt.Errorf("%s=%s: the %s header is set by ltxvfs itself", param, env, r)
			}
		}
		if h.Get(name) != "" {
			return fmt.Errorf("%s=%s: header %s is given twice", param, env, http.CanonicalHeaderKey(name))
		}
		h.Set(name, value)
		return nil
	}
	for _, env := range p.HeaderEnv {
		v, ok := os.LookupEnv(env)
		if !ok {
			return nil, fmt.Errorf("header-env=%s: the environment variable %s is not set", env, env)
		}
		name, value, found := strings.Cut(v, ":")
		if !found {
			name = ""
		}
		if err := set("header-env", env, strings.TrimSpace(name), strings.TrimSpace(value)); err != nil {
			return nil, err
		}
	}
	if env := p.BearerTokenEnv; env != "" {
		v, ok := os.LookupEnv(env)
		if !ok {
			return nil, fmt.Errorf("bearer-token-env=%s: the environment variable %s is not set", env, env)
		}
		token := strings.TrimSpace(v)
		if token == "" {
			return nil, fmt.Errorf("bearer-token-env=%s: the environment variable %s is empty", env, env)
		}
		if err := set("bearer-token-env", env, "Authorization", "Bearer "+token); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for _, c := range []byte(s) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// errRedirect marks the refusals of checkRedirect, which are not retried.
var errRedirect = errors.New("redirect refused")

// errFolder is a redirect that appends a slash to the path: what a web
// server answers for a folder, where a file or object was asked for.
var errFolder = fmt.Errorf("%w: the path is a folder on the server (it redirects to the path with a slash): %w", errRedirect, os.ErrNotExist)

// checkRedirect follows at most maxRedirects redirects, refuses a loop and
// a downgrade from https to http, and keeps the client's own headers (a
// token) from any host but the replica's.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if prev := via[len(via)-1].URL; req.URL.Path == prev.Path+"/" {
		return errFolder
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: stopped after %d redirects", errRedirect, maxRedirects)
	}
	for _, v := range via {
		if v.URL.String() == req.URL.String() {
			return fmt.Errorf("%w: a redirect loop leads back to %s", errRedirect, req.URL.Redacted())
		}
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("%w: %s redirects to %s, a downgrade from https", errRedirect, via[len(via)-1].URL.Redacted(), req.URL.Redacted())
	}
	if req.URL.Host != c.host {
		for name := range c.header {
			req.Header.Del(name)
		}
	}
	return nil
}
