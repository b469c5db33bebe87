package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"s3://bucket/prefix?endpoint=http://127.0.0.1:9000":         "s3://bucket/prefix?endpoint=http://127.0.0.1:9000",
		"s3://KEY:s3cr3t@bucket/prefix":                             "s3://xxxxx@bucket/prefix",
		"s3://KEY:a/b+c@bucket/prefix":                              "s3://xxxxx@bucket/prefix",
		"s3://b/p?endpoint=http://KEY:s3cr3t@host:9000&region=r":    "s3://b/p?endpoint=http://xxxxx@host:9000&region=r",
		"s3://b/p?endpoint=http%3A%2F%2FKEY%3As3cr3t%40host%3A9000": "s3://b/p?endpoint=http%3A%2F%2Fxxxxx%40host%3A9000",
		"s3://b/p?region=r&endpoint=http%3a%2f%2fKEY%3as3cr3t%40h":  "s3://b/p?region=r&endpoint=http%3a%2f%2fxxxxx%40h",
		"s3://K:s3cr3t@b/p?endpoint=https://K:s3cr3t@h":             "s3://xxxxx@b/p?endpoint=https://xxxxx@h",
		"replica=s3://K:s3cr3t@b/p: no such bucket":                 "replica=s3://xxxxx@b/p: no such bucket",
		"s3://b/p?endpoint=KEY:s3cr3t@host:9000&region=r":           "s3://b/p?endpoint=xxxxx@host:9000&region=r",
		"s3://b/p?endpoint=KEY%3As3cr3t%40host":                     "s3://b/p?endpoint=xxxxx%40host",
		"s3://b/p?endpoint=host:9000":                               "s3://b/p?endpoint=host:9000",
		"/abs/dir":                                                  "/abs/dir",
		"file:///abs/dir@2":                                         "file://xxxxx@2",
		"ß://K:s3cr3t@b %3a%2F%2F":                                  "ß://xxxxx@b %3a%2F%2F",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(Redact(in), "s3cr3t") {
			t.Errorf("Redact(%q) keeps the secret", in)
		}
	}
}

// TestShown: text given as Shown is redacted whatever verb formats it.
func TestShown(t *testing.T) {
	raw := "s3://AKIAKEY:s3cr3t@bucket/prefix"
	for _, verb := range []string{"%s", "%v", "%q", "%+v", "%10s", "%#v"} {
		got := fmt.Sprintf(verb, Shown(raw))
		if strings.Contains(got, "s3cr3t") || strings.Contains(got, "AKIAKEY") || !strings.Contains(got, "bucket/prefix") {
			t.Errorf("%s: %s", verb, got)
		}
	}
	if got := fmt.Sprint(fmt.Errorf("open %v: %w", Shown(raw), errors.New("boom"))); strings.Contains(got, "s3cr3t") {
		t.Errorf("wrapped: %s", got)
	}
}
