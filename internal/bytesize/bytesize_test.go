package bytesize

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"1048576": 1 << 20, "64MiB": 64 << 20, "64mib": 64 << 20, "1GiB": 1 << 30, "500MB": 500e6,
		"1.5GiB": 3 << 29, "2K": 2048, "10 MB": 10e6, "4096B": 4096, "1kb": 1000,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1MiB", "0", "0.1", "1e9", "MiB", "0x10", "inf", "NaN", "1 GiBs", "99999999TiB"} {
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), "size \""+in+"\"") {
			t.Errorf("Parse(%q): error %v, want one naming the input", in, err)
		}
	}
	// A URL pasted by mistake is quoted without its credentials.
	_, err := Parse("s3://key:s3cr3t@bucket/app")
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "bucket/app") {
		t.Errorf("Parse of a URL with a secret: %v", err)
	}
}
