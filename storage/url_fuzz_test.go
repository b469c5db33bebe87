package storage

import (
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		"/abs/dir", "rel/dir", "file:///abs", "file://localhost/x", "file://host/x", "file:rel",
		"s3://b", "s3://b/p/q/", "s3://b/p?endpoint=127.0.0.1:9000&region=r&force-path-style=true",
		"s3://k:s@b/p", "s3://b/p?endpoint=", "s3://b/p?forcePathStyle=0", "gs://b", "://", "s3://%zz",
		"s3://b/p?endpoint=http://k:s3cr3t@h&regoin=x", "s3://b/p?endpoint=http%3A%2F%2Fk%3As3cr3t%40h%3A1&x=1",
		"s3://k:a/b@b/p", "s3:k:s3cr3t@b", "k:s3cr3t@host/dir",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ParseURL(raw)
		// Neither an error nor the parsed URL's String shows a password,
		// the URL's own or its endpoint's.
		var shown string
		if err != nil {
			shown = err.Error()
		} else {
			shown = u.String()
		}
		for _, pw := range passwords(raw) {
			// An empty password shows nothing: ":@" in a path is not one.
			if pw == "" {
				continue
			}
			if strings.Contains(shown, ":"+pw+"@") || strings.Contains(strings.ToUpper(shown), strings.ToUpper("%3A"+url.QueryEscape(pw)+"%40")) {
				t.Fatalf("ParseURL(%q): %q shows the password %q", raw, shown, pw)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("ParseURL(%q): error %v does not wrap ErrInvalidURL", raw, err)
			}
			return
		}
		switch u.Scheme {
		case "file":
			if !filepath.IsAbs(u.Path) {
				t.Fatalf("ParseURL(%q): file path %q is not absolute", raw, u.Path)
			}
		case "s3":
			if u.Bucket == "" {
				t.Fatalf("ParseURL(%q): s3 URL without a bucket", raw)
			}
			if strings.HasPrefix(u.Prefix, "/") || strings.HasSuffix(u.Prefix, "/") {
				t.Fatalf("ParseURL(%q): prefix %q keeps a slash at an end", raw, u.Prefix)
			}
			if u.Endpoint != "" && !strings.HasPrefix(u.Endpoint, "http://") && !strings.HasPrefix(u.Endpoint, "https://") {
				t.Fatalf("ParseURL(%q): endpoint %q has no scheme", raw, u.Endpoint)
			}
		default:
			t.Fatalf("ParseURL(%q): unexpected scheme %q", raw, u.Scheme)
		}
	})
}

// passwords are the passwords of the URLs in raw: its own and an endpoint
// parameter's, as url.Parse reads them. A bare path ("//:pw@", with no
// scheme) is a directory name, not a URL with credentials.
func passwords(raw string) []string {
	var out []string
	u, err := url.Parse(raw)
	if err != nil || !strings.Contains(raw, "://") {
		return nil
	}
	if pw, ok := u.User.Password(); ok {
		out = append(out, pw)
	}
	q, _ := url.ParseQuery(u.RawQuery)
	for _, ep := range q["endpoint"] {
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		if eu, err := url.Parse(ep); err == nil {
			if pw, ok := eu.User.Password(); ok {
				out = append(out, pw)
			}
		}
	}
	return out
}
