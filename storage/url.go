package storage

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// URL is a parsed replica URL.
//
//	file:///abs/dir              a local directory
//	/abs/dir, ./rel/dir          the same, as a bare path
//	s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&force-path-style=true
//	https://host/path?bearer-token-env=TOKEN   read-only, from a web server (see HTTPParams)
type URL struct {
	Scheme string // "file", "s3", "http" or "https"

	// Path is the absolute directory of a file replica.
	Path string

	// Bucket and Prefix locate an S3 replica; Prefix has no leading or
	// trailing slash and may be empty.
	Bucket string
	Prefix string

	// Endpoint, Region and ForcePathStyle configure S3-compatible servers.
	// Endpoint always carries a scheme (http:// is assumed when the URL
	// gives none, as Litestream does). ForcePathStyle defaults to true when
	// an endpoint is given, as in Litestream.
	Endpoint       string
	Region         string
	ForcePathStyle bool

	// BaseURL is an http(s) replica's URL without its parameters and
	// without a trailing slash (scheme, host, path): the replica's files
	// are under BaseURL + "/ltx/". HTTP holds its parameters.
	BaseURL string
	HTTP    HTTPParams

	raw string
}

// String returns the URL as given, with any user information removed.
func (u *URL) String() string { return fmt.Sprint(Shown(u.raw)) }

// s3Params are the query parameters an s3 URL accepts; the camel-case
// spellings are Litestream's.
var s3Params = map[string]string{
	"endpoint":         "endpoint",
	"region":           "region",
	"force-path-style": "force-path-style",
	"forcePathStyle":   "force-path-style",
}

// ParseURL parses a replica URL. Errors wrap ErrInvalidURL and quote the URL
// (without credentials) and what is wrong with it.
func ParseURL(raw string) (*URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("%w: empty: give a directory, file:///abs/dir, s3://bucket/prefix or https://host/path", ErrInvalidURL)
	}
	if !strings.Contains(raw, "://") && !strings.HasPrefix(raw, "file:") {
		if scheme, ok := schemeLike(raw); ok {
			return nil, invalid(raw, "looks like a %s URL missing a slash (want %s://...); write ./%s for a directory of that name", scheme, scheme, Shown(raw))
		}
		return parseBarePath(raw)
	}

	u, err := url.Parse(raw)
	if err != nil {
		return nil, invalid(raw, "%v", unwrapURLError(err))
	}
	if u.User != nil {
		how := "use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a shared AWS profile"
		if u.Scheme == "http" || u.Scheme == "https" {
			how = "name an environment variable that holds them with bearer-token-env=NAME or header-env=NAME (e.g. NAME='Authorization: Basic ...')"
		}
		return nil, invalid(raw, "credentials do not belong in the URL; %s", how)
	}

	switch u.Scheme {
	case "file":
		return parseFileURL(raw, u)
	case "s3":
		return parseS3URL(raw, u)
	case "http", "https":
		return parseHTTPURL(raw, u)
	default:
		return nil, invalid(raw, "unknown scheme %q (want file, s3, http or https)", u.Scheme)
	}
}

// schemeLike reports whether raw starts like a URL scheme ("s3:", "file:"),
// so that a typo such as s3:/bucket is refused instead of being taken for
// a directory named "s3:". A single letter is left alone (a drive letter).
func schemeLike(raw string) (string, bool) {
	i := strings.IndexByte(raw, ':')
	if i < 2 {
		return "", false
	}
	for j, c := range raw[:i] {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (j == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", false
		}
	}
	return raw[:i], true
}

func parseBarePath(raw string) (*URL, error) {
	abs, err := filepath.Abs(raw)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidURL, raw, err)
	}
	return &URL{Scheme: "file", Path: abs, raw: raw}, nil
}

func parseFileURL(raw string, u *url.URL) (*URL, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("%w %q: a file URL takes an absolute path, file:///abs/dir (host %q given)", ErrInvalidURL, raw, u.Host)
	}
	if u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return nil, fmt.Errorf("%w %q: a file URL takes an absolute path, file:///abs/dir", ErrInvalidURL, raw)
	}
	if len(u.Query()) > 0 {
		return nil, fmt.Errorf("%w %q: a file URL takes no query parameters", ErrInvalidURL, raw)
	}
	return &URL{Scheme: "file", Path: filepath.Clean(filepath.FromSlash(u.Path)), raw: raw}, nil
}

func parseS3URL(raw string, u *url.URL) (*URL, error) {
	out := &URL{Scheme: "s3", Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), raw: raw}
	if out.Bucket == "" {
		return nil, invalid(raw, "bucket required, as in s3://bucket/prefix")
	}
	pathStyleSet := false
	for key, values := range u.Query() {
		name, ok := s3Params[key]
		if !ok {
			return nil, invalid(raw, "unknown parameter %q (want endpoint, region or force-path-style)", key)
		}
		if len(values) != 1 {
			return nil, invalid(raw, "parameter %q given %d times", key, len(values))
		}
		v := values[0]
		switch name {
		case "endpoint":
			if v == "" {
				return nil, invalid(raw, "endpoint is empty")
			}
			if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
				v = "http://" + v
			}
			ep, err := url.Parse(v)
			if err != nil || ep.Host == "" {
				return nil, invalid(raw, "endpoint is not a host or http(s) URL")
			}
			out.Endpoint = v
		case "region":
			out.Region = v
		case "force-path-style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, invalid(raw, "force-path-style=%q is not true or false", v)
			}
			out.ForcePathStyle = b
			pathStyleSet = true
		}
	}
	// As Litestream does: an S3-compatible server behind a custom endpoint
	// is addressed path-style unless the URL says otherwise.
	if out.Endpoint != "" && !pathStyleSet {
		out.ForcePathStyle = true
	}
	return out, nil
}

// invalid is an error of ParseURL about the URL raw: it wraps ErrInvalidURL
// and quotes the URL as Shown, so that no error of the parser can show a
// secret put in the URL, whatever it says.
func invalid(raw, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidURL, Shown(raw), fmt.Sprintf(format, args...))
}

// Shown is text that may hold a replica URL (a URL, a DSN parameter's
// value): fmt shows it, with any verb, as Redact does. Messages quote what
// a user gave through it, so that a new one cannot forget to redact.
type Shown string

// Format writes s redacted, formatted as verb and its flags say.
func (s Shown) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), redact(string(s)))
}

// Redact returns raw, a replica URL or any text that may hold one, with
// the user information of every URL in it replaced by xxxxx: the replica
// URL's own (s3://key:secret@bucket) and an endpoint's, plain or
// percent-encoded (endpoint=http%3A%2F%2Fkey%3Asecret%40host). Errors and
// logs that quote a URL as given quote it through Redact, so that a secret
// put in a URL by mistake is never shown.
func Redact(raw string) string { return redact(raw) }

func redact(raw string) string {
	var b strings.Builder
	rest := raw
	for first := true; ; first = false {
		i, n := schemeSep(rest)
		if first && strings.HasPrefix(rest, "//") {
			i, n = 0, 2 // a URL without a scheme: "//user:pw@host"
		}
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i+n])
		rest = rest[i+n:]
		// The authority runs to the query, or in a query (an endpoint) to
		// the next parameter; a secret may hold a raw slash, so a slash
		// does not end it here.
		stops := []string{"?", "#", "%3F", "%3f", "%23", "%26"}
		if strings.Contains(b.String(), "?") {
			stops = append(stops, "&")
		}
		end := len(rest)
		for _, stop := range stops {
			if k := strings.Index(rest, stop); k >= 0 && k < end {
				end = k
			}
		}
		auth := rest[:end]
		at := max(strings.LastIndex(auth, "@"), lastIndexFold(auth, "%40"))
		if at >= 0 {
			b.WriteString("xxxxx")
			rest = rest[at:] // from the @ on
		}
	}
}

// schemeSep finds what comes before an authority: the next "://", plain or
// percent-encoded, or "endpoint=" when its value has no scheme (the parser
// takes host:port and user@host:port there too). It returns its index and
// length, or -1.
func schemeSep(s string) (int, int) {
	best, n := -1, 0
	for _, sep := range []string{"://", "%3A%2F%2F", "endpoint="} {
		i := indexFold(s, strings.ToUpper(sep))
		if i < 0 || (best >= 0 && i >= best) {
			continue
		}
		if sep == "endpoint=" {
			v := s[i+len(sep):]
			if k := strings.IndexAny(v, "&#"); k >= 0 {
				v = v[:k]
			}
			if strings.Contains(v, "://") || indexFold(v, "%3A%2F%2F") >= 0 {
				continue // its "://" comes next
			}
		}
		best, n = i, len(sep)
	}
	return best, n
}

// indexFold and lastIndexFold find sub, upper-case ASCII, in s in any
// case; byte offsets stay those of s, whatever else s holds.
func indexFold(s, sub string) int { return strings.Index(upperASCII(s), sub) }

func lastIndexFold(s, sub string) int { return strings.LastIndex(upperASCII(s), sub) }

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// unwrapURLError drops url.Error's own quoting of the input, which may hold
// credentials.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
