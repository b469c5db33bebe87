package storage

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// HTTPParams are the options of an http(s) replica URL, given as query
// parameters. None holds a secret: a header's value or a token is read
// from the environment variable a parameter names, when the replica is
// opened, so that the URL (shown in logs and errors) never carries it.
//
//	https://host/path?bearer-token-env=TOKEN&ca-file=/etc/ssl/my-ca.pem&timeout=10s
type HTTPParams struct {
	// HeaderEnv names environment variables (header-env=NAME, one
	// parameter per header) whose values are request headers, written
	// "Header-Name: value", sent with every request.
	HeaderEnv []string
	// BearerTokenEnv names an environment variable (bearer-token-env=NAME)
	// whose value is sent as "Authorization: Bearer <value>".
	BearerTokenEnv string
	// CAFile is a PEM bundle of CA certificates (ca-file=PATH) trusted
	// beside the system's (which SSL_CERT_FILE and SSL_CERT_DIR replace,
	// as in every Go program).
	CAFile string
	// Timeout bounds the wait for each response's headers (timeout=30s);
	// ConnectTimeout bounds a connection's dial and TLS handshake
	// (connect-timeout=5s); NotFoundRetry is how long a missing LTX file
	// is retried before it is reported (not-found-retry=3s: a CDN's edge
	// may not have a file the manifest names yet). Zero means the
	// backend's default.
	Timeout        time.Duration
	ConnectTimeout time.Duration
	NotFoundRetry  time.Duration
	// LayoutS3 (layout=s3; layout=file is the default) reads the layout
	// the s3 backend writes, <path>/<level as %04x>/<min>-<max>.ltx and
	// <path>/ltxvfs/<name>: an S3 bucket read through its public or CDN
	// URL, the path being the replica's prefix. Without it, the file
	// backend's: <path>/ltx/<level>/<min>-<max>.ltx, <path>/ltx/ltxvfs/<name>.
	LayoutS3 bool
}

// httpParamNames lists the parameters an http(s) URL takes, for errors.
const httpParamNames = "header-env, bearer-token-env, ca-file, timeout, connect-timeout, not-found-retry or layout"

func parseHTTPURL(raw string, u *url.URL) (*URL, error) {
	if u.Opaque != "" || u.Host == "" {
		return nil, invalid(raw, "host required, as in %s://host/path", u.Scheme)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, invalid(raw, "a replica URL takes no fragment (#...)")
	}
	q := u.Query()
	// Names of environment variables first, and without quoting the URL:
	// a user who put the secret itself there must not see it echoed.
	for _, key := range []string{"header-env", "bearer-token-env"} {
		for _, v := range q[key] {
			if !isEnvName(v) {
				return nil, fmt.Errorf("%w: %s://%s...: %s takes the name of an environment variable (letters, digits and '_'), not a header or a token (the value given is not shown, in case it is one)", ErrInvalidURL, u.Scheme, u.Host, key)
			}
		}
	}
	out := &URL{Scheme: u.Scheme, raw: raw}
	for key, values := range q {
		if key != "header-env" && len(values) != 1 {
			return nil, invalid(raw, "parameter %q given %d times", key, len(values))
		}
		v := values[0]
		switch key {
		case "header-env":
			out.HTTP.HeaderEnv = values
		case "bearer-token-env":
			out.HTTP.BearerTokenEnv = v
		case "ca-file":
			if v == "" {
				return nil, invalid(raw, "ca-file is empty")
			}
			out.HTTP.CAFile = v
		case "timeout", "connect-timeout", "not-found-retry":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, invalid(raw, "%s=%q is not a positive duration such as 10s", key, v)
			}
			switch key {
			case "timeout":
				out.HTTP.Timeout = d
			case "connect-timeout":
				out.HTTP.ConnectTimeout = d
			default:
				out.HTTP.NotFoundRetry = d
			}
		case "layout":
			switch v {
			case "file":
			case "s3":
				// The s3 backend's keys under an empty prefix start with a
				// slash (as Litestream's do), which a URL path cannot tell
				// from none.
				if strings.Trim(u.Path, "/") == "" {
					return nil, invalid(raw, "layout=s3 needs the replica's prefix as the URL's path (https://host/prefix)")
				}
				out.HTTP.LayoutS3 = true
			default:
				return nil, invalid(raw, "layout=%q (want file or s3)", v)
			}
		default:
			return nil, invalid(raw, "unknown parameter %q (want %s)", key, httpParamNames)
		}
	}
	base := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	out.BaseURL = strings.TrimRight(base.String(), "/")
	return out, nil
}

// isEnvName reports whether s is a portable environment variable name.
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}
