package storage

import (
	"errors"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		"/abs/dir", "rel/dir", "file:///abs", "file://localhost/x", "file://host/x", "file:rel",
		"s3://b", "s3://b/p/q/", "s3://b/p?endpoint=127.0.0.1:9000&region=r&force-path-style=true",
		"s3://k:s@b/p", "s3://key:s3cr3t@b/p", "s3://b/p?endpoint=", "s3://b/p?forcePathStyle=0", "gs://b", "://", "s3://%zz",
		"s3://b/p?endpoint=http://k:s3cr3t@h&regoin=x", "s3://b/p?endpoint=http%3A%2F%2Fk%3As3cr3t%40h%3A1&x=1",
		"s3://k:a/b@b/p", "s3:k:s3cr3t@b", "k:s3cr3t@host/dir",
		"https://h/p?bearer-token-env=T&timeout=1s", "http://u:s3cr3t@h:80/p", "https://h/p?header-env=A&header-env=B", "https://h#f",
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
		// Neither Redact nor what is shown holds a password, beyond the
		// input as Redact shows it. A password whose text the input also
		// holds outside its credentials (in a path, a parameter's name or
		// value, the fragment; plain or percent-encoded) may be shown
		// there, as the input says it: such a leak cannot be told from an
		// echo, so that password is not checked.
		redacted := Redact(raw)
		beyond := strings.ReplaceAll(strings.ReplaceAll(shown, strconv.Quote(redacted), ""), redacted, "")
		rest := withoutCredentials(raw)
		for _, pw := range passwords(raw) {
			if pw == "" || echoes(rest, pw) {
				continue
			}
			for _, form := range []string{":" + pw + "@", "%3A" + url.QueryEscape(pw) + "%40"} {
				if containsFold(redacted, form) {
					t.Fatalf("Redact(%q) = %q keeps the password %q", raw, redacted, pw)
				}
				if containsFold(beyond, form) {
					t.Fatalf("ParseURL(%q): %q shows the password %q", raw, shown, pw)
				}
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
		case "http", "https":
			b, err := url.Parse(u.BaseURL)
			if err != nil || b.Scheme != u.Scheme || b.Host == "" || b.User != nil || b.RawQuery != "" || strings.HasSuffix(u.BaseURL, "/") {
				t.Fatalf("ParseURL(%q): base URL %q is not scheme://host/path without credentials, query or trailing slash (%v)", raw, u.BaseURL, err)
			}
		default:
			t.Fatalf("ParseURL(%q): unexpected scheme %q", raw, u.Scheme)
		}
	})
}

// withoutCredentials is raw without the user information of its URL and
// without the endpoint parameters that hold a password, as url.Parse and
// url.ParseQuery read them.
func withoutCredentials(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || !strings.Contains(raw, "://") {
		return raw
	}
	out := raw
	if u.User != nil {
		// The scheme holds no colon: the first "://" ends it, and the
		// authority runs to the first of / ? #; its user information to
		// the last @ in it.
		start := strings.Index(out, "://") + 3
		end := len(out)
		if k := strings.IndexAny(out[start:], "/?#"); k >= 0 {
			end = start + k
		}
		if at := strings.LastIndex(out[start:end], "@"); at >= 0 {
			out = out[:start] + out[start+at+1:]
		}
	}
	q, h := strings.Index(out, "?"), strings.Index(out, "#")
	if q < 0 || (h >= 0 && h < q) {
		return out
	}
	query, _, _ := strings.Cut(out[q+1:], "#")
	var kept []string
	for _, item := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(item, "=")
		key, kerr := url.QueryUnescape(k)
		val, verr := url.QueryUnescape(v)
		if kerr == nil && verr == nil && key == "endpoint" && len(passwords("s3://b/?endpoint="+url.QueryEscape(val))) > 0 {
			continue
		}
		kept = append(kept, item)
	}
	return out[:q+1] + strings.Join(kept, "&") + out[q+1+len(query):]
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToUpper(s), strings.ToUpper(sub))
}

// echoes reports whether s holds pw, as it is or percent-decoded.
func echoes(s, pw string) bool {
	if containsFold(s, pw) {
		return true
	}
	for _, unescape := range []func(string) (string, error){url.QueryUnescape, url.PathUnescape} {
		if d, err := unescape(s); err == nil && containsFold(d, pw) {
			return true
		}
	}
	return false
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
