package storage

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	abs, _ := filepath.Abs("rel/dir")
	tests := []struct {
		raw  string
		want URL
	}{
		{"/abs/dir", URL{Scheme: "file", Path: "/abs/dir"}},
		{"rel/dir", URL{Scheme: "file", Path: abs}},
		{"./s3:/bucket", URL{Scheme: "file", Path: filepath.Join(filepath.Dir(abs), "..", "s3:", "bucket")}},
		{"file:///abs/dir", URL{Scheme: "file", Path: "/abs/dir"}},
		{"file://localhost/abs/dir/", URL{Scheme: "file", Path: "/abs/dir"}},
		{"s3://bucket", URL{Scheme: "s3", Bucket: "bucket"}},
		{"s3://bucket/a/b/", URL{Scheme: "s3", Bucket: "bucket", Prefix: "a/b"}},
		{"s3://bucket/db?endpoint=127.0.0.1:9000&region=eu-west-1&force-path-style=true",
			URL{Scheme: "s3", Bucket: "bucket", Prefix: "db", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1", ForcePathStyle: true}},
		{"s3://bucket/db?endpoint=https://fly.storage.tigris.dev&forcePathStyle=false",
			URL{Scheme: "s3", Bucket: "bucket", Prefix: "db", Endpoint: "https://fly.storage.tigris.dev"}},
		{"s3://bucket/db?endpoint=http://127.0.0.1:7070",
			URL{Scheme: "s3", Bucket: "bucket", Prefix: "db", Endpoint: "http://127.0.0.1:7070", ForcePathStyle: true}},
		{"https://cdn.example.com", URL{Scheme: "https", BaseURL: "https://cdn.example.com"}},
		{"http://127.0.0.1:8080/replicas/app/", URL{Scheme: "http", BaseURL: "http://127.0.0.1:8080/replicas/app"}},
		{"https://h/a%20b/c%2Fd", URL{Scheme: "https", BaseURL: "https://h/a%20b/c%2Fd"}},
		{"https://h/db?bearer-token-env=TOKEN&header-env=H1&header-env=H_2&ca-file=/etc/ca.pem&timeout=10s&connect-timeout=2s&not-found-retry=500ms",
			URL{Scheme: "https", BaseURL: "https://h/db", HTTP: HTTPParams{
				HeaderEnv: []string{"H1", "H_2"}, BearerTokenEnv: "TOKEN", CAFile: "/etc/ca.pem",
				Timeout: 10 * time.Second, ConnectTimeout: 2 * time.Second, NotFoundRetry: 500 * time.Millisecond,
			}}},
		{"https://bucket.example.com/db?layout=s3", URL{Scheme: "https", BaseURL: "https://bucket.example.com/db", HTTP: HTTPParams{LayoutS3: true}}},
		{"https://h/db?layout=file", URL{Scheme: "https", BaseURL: "https://h/db"}},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.raw)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.raw, err)
			continue
		}
		tt.want.raw = tt.raw
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tt.raw, *got, tt.want)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct {
		raw      string
		mentions string
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"gs://bucket/db", `unknown scheme "gs"`},
		{"file://relative/dir", "absolute path"},
		{"file:relative", "absolute path"},
		{"file:///abs?x=1", "no query parameters"},
		{"s3:///prefix-only", "bucket required"},
		{"s3://bucket/db?endpont=http://x", `unknown parameter "endpont"`},
		{"s3://bucket/db?force-path-style=yes please", "force-path-style"},
		{"s3://bucket/db?region=a&region=b", "given 2 times"},
		{"s3://bucket/db?endpoint=", "endpoint is empty"},
		{"s3://AKIA:supersecret@bucket/db", "credentials do not belong"},
		{"s3://bu cket/%zz", "invalid"},
		{"s3:/bucket/db", "missing a slash"},
		{"s3:bucket", "missing a slash"},
		{"file:relative", "absolute path"},
		{"https://user:supersecret@host/db", "bearer-token-env"},
		{"http://:supersecret@host/db", "credentials do not belong"},
		{"https:///db", "host required"},
		{"https:/host/db", "missing a slash"},
		{"https://host/db#frag", "no fragment"},
		{"https://host/db?endpoint=x", `unknown parameter "endpoint"`},
		{"https://host/db?timeout=soon", "timeout"},
		{"https://host/db?not-found-retry=-1s", "positive duration"},
		{"https://host/db?ca-file=", "ca-file is empty"},
		{"https://host/db?ca-file=a&ca-file=b", "given 2 times"},
		{"https://host/db?bearer-token-env=supersecret-token", "name of an environment variable"},
		{"https://host/db?header-env=Authorization:+Bearer+supersecret&timeout=x", "name of an environment variable"},
		{"https://host/db?header-env=", "name of an environment variable"},
		{"https://host/db?layout=gcs", "want file or s3"},
		{"https://host/?layout=s3", "needs the replica's prefix"},
	}
	for _, tt := range tests {
		_, err := ParseURL(tt.raw)
		if err == nil {
			t.Errorf("ParseURL(%q) succeeded", tt.raw)
			continue
		}
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("ParseURL(%q): %v does not wrap ErrInvalidURL", tt.raw, err)
		}
		if !strings.Contains(err.Error(), tt.mentions) {
			t.Errorf("ParseURL(%q): %q does not say %q", tt.raw, err, tt.mentions)
		}
		if strings.Contains(err.Error(), "supersecret") {
			t.Errorf("ParseURL(%q): error %q leaks the secret", tt.raw, err)
		}
	}
}

func TestOpenUnregisteredScheme(t *testing.T) {
	// No backend is imported by this package's tests.
	for raw, pkg := range map[string]string{"s3://bucket/db": "storage/s3", "https://host/db": "storage/http", "http://host/db": "storage/http"} {
		_, err := Open(t.Context(), raw)
		if err == nil || !strings.HasSuffix(err.Error(), pkg+")") {
			t.Fatalf("Open(%q) without its backend linked: %v, want a hint to import %s", raw, err, pkg)
		}
	}
}

func TestLayout(t *testing.T) {
	if got, want := FilePath("/r", 9, 1, 0x1f), "/r/ltx/9/0000000000000001-000000000000001f.ltx"; got != want {
		t.Errorf("FilePath = %s, want %s", got, want)
	}
	if got, want := ObjectKey("db", 10-1, 1, 2), "db/0009/0000000000000001-0000000000000002.ltx"; got != want {
		t.Errorf("ObjectKey = %s, want %s", got, want)
	}
	if got, want := ObjectKey("", 0, 3, 3), "/0000/0000000000000003-0000000000000003.ltx"; got != want {
		t.Errorf("ObjectKey with empty prefix = %s, want %s (as Litestream)", got, want)
	}
}
