package token

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/fuzzseed"
)

func TestRoundTrip(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	tok := New(0x4d2, at)
	s := tok.String()
	if s != "ltx1:00000000000004d2:1748779200123" {
		t.Fatalf("String() = %s", s)
	}
	got, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if got != tok || !got.Matches(at.UnixMilli()) || got.Matches(at.UnixMilli()+1) {
		t.Fatalf("Parse(%s) = %+v, want %+v", s, got, tok)
	}
	// Upper-case hex, as a user might retype it.
	if got, err := Parse("ltx1:00000000000004D2:1748779200123"); err != nil || got.TXID != 0x4d2 {
		t.Fatalf("upper-case hex: %+v, %v", got, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "not a token"},
		{"garbage", "not a token"},
		{"1234", "not a token"},
		{"ltx:0000000000000001:1", "not a token"},
		{"ltxa:0000000000000001:1", "not a token"},
		{"ltx2:0000000000000001:1", "format ltx2 is not known to this reader, which reads ltx1 tokens"},
		{"ltx1:", "not 3 fields"},
		{"ltx1:0000000000000001", "not 3 fields"},
		{"ltx1:0000000000000001:1:2", "not 3 fields"},
		{"ltx1:1:1748779200123", "TXID is not 16 hex digits"},
		{"ltx1:000000000000000g:1748779200123", "TXID is not 16 hex digits"},
		{"ltx1:0000000000000000:1748779200123", "TXID 0"},
		{"ltx1:0000000000000001:", "commit time is not a number"},
		{"ltx1:0000000000000001:-5", "commit time is not a number"},
		{"ltx1:0000000000000001:2025-06-01", "commit time is not a number"},
		{"ltx1:0000000000000001:9999999999999999", "commit time is not a number"},
		{"ltx1:0000000000000001:0", "commit time 0"},
		// A URL pasted by mistake: no part of it is quoted back.
		{"ltx1:s3%3A%2F%2Fkey%3Asecret%40b:1", "TXID is not 16 hex digits"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", tc.in, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q): %v quotes the input", tc.in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	fuzzseed.Write(f, []fuzzseed.Seed{
		fuzzseed.New("token", "ltx1:00000000000004d2:1748779200123"),
		fuzzseed.New("token-upper", "ltx1:00000000000004D2:1748779200123"),
		fuzzseed.New("token-small", "ltx1:0000000000000001:1"),
		fuzzseed.New("version", "ltx2:x"),
		fuzzseed.New("fields", "ltx1:0000000000000001:1:2"),
		fuzzseed.New("url", "s3://key:secret@bucket/app"),
		fuzzseed.New("empty", ""),
	})
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			return
		}
		// What parses prints back as the same token.
		again, err := Parse(tok.String())
		if err != nil || again != tok {
			t.Fatalf("Parse(%q) = %+v; its String %q parses to %+v, %v", s, tok, tok.String(), again, err)
		}
	})
}
