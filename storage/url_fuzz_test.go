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
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ParseURL(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("ParseURL(%q): error %v does not wrap ErrInvalidURL", raw, err)
			}
			if pu, perr := url.Parse(raw); perr == nil && pu.User != nil {
				if pw, ok := pu.User.Password(); ok && strings.Contains(err.Error(), ":"+pw+"@") {
					t.Fatalf("ParseURL(%q): error %q shows the password", raw, err)
				}
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
