package httpstore_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/nginxtest"
	"github.com/ltxvfs/ltxvfs/storage"
)

const secret = "s3cr3t"

// private serves /private/ to requests with the token and the key only.
const private = `
        location ^~ /private/ {
            if ($http_authorization != "Bearer tok-s3cr3t") {
                return 401;
            }
            if ($http_x_api_key != "key-s3cr3t") {
                return 403;
            }
            rewrite ^/private/(.*)$ /replica/$1 last;
        }
        location ^~ /loop/ {
            return 302 $uri;
        }
`

func TestSecretsNeverShown(t *testing.T) {
	root := t.TempDir()
	replicaSite(t, root)
	srv := nginxtest.Start(t, nginxtest.Config{Root: root, Locations: private})
	t.Setenv("LTXVFS_TOKEN", "tok-s3cr3t")
	t.Setenv("LTXVFS_KEY", "X-Api-Key: key-s3cr3t")
	t.Setenv("LTXVFS_WRONG_TOKEN", "wrong-s3cr3t")
	t.Setenv("LTXVFS_NO_COLON", "key-s3cr3t")
	t.Setenv("LTXVFS_NEWLINE", "X-Api-Key: key-s3cr3t\nX-Other: 1")
	t.Setenv("LTXVFS_RESERVED", "Range: bytes=0-s3cr3t")
	const auth = "?bearer-token-env=LTXVFS_TOKEN&header-env=LTXVFS_KEY"

	var logs bytes.Buffer
	opts := testOptions
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var shown []string
	show := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		shown = append(shown, err.Error())
	}

	// With the token and the key, the private replica reads.
	c := open(t, srv.URL+"/private"+auth, opts)
	if err := readObject(c, "manifest"); err != nil {
		t.Fatalf("with the token and the key: %v", err)
	}
	if _, err := readFile(c, 10, 20); err != nil {
		t.Fatalf("with the token and the key: %v", err)
	}
	shown = append(shown, c.String())
	show("a missing object", readObject(c, "absent"))
	show("a missing file", second(c.OpenLTXFile(context.Background(), 0, 9, 9, 0, 0)))
	show("a listing", second(c.LTXFiles(context.Background(), 0, 0, false)))
	show("a write", c.DeleteAll(context.Background()))

	for _, tt := range []struct{ url, says string }{
		{srv.URL + "/private?header-env=LTXVFS_KEY", "401"},
		{srv.URL + "/private?bearer-token-env=LTXVFS_WRONG_TOKEN&header-env=LTXVFS_KEY", "401"},
		{srv.URL + "/private?bearer-token-env=LTXVFS_TOKEN", "403"},
		{srv.URL + "/loop" + auth, "redirect loop"},
		{"http://" + closedAddr(t) + "/db" + auth, "refused"},
	} {
		c := open(t, tt.url, opts)
		err := readObject(c, "manifest")
		if err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: got %v, want %q", tt.url, err, tt.says)
		}
		show(tt.url, err)
		shown = append(shown, c.String())
	}

	// What a user may get wrong when giving them.
	for _, raw := range []string{
		"https://user:s3cr3t@host/db",
		"https://:s3cr3t@host/db" + auth,
		"https://host/db?bearer-token-env=tok-s3cr3t",
		"https://host/db?header-env=X-Api-Key:+key-s3cr3t",
		"https://host/db?header-env=LTXVFS_NO_COLON",
		"https://host/db?header-env=LTXVFS_NEWLINE",
		"https://host/db?header-env=LTXVFS_RESERVED",
		"https://host/db?header-env=LTXVFS_KEY&header-env=LTXVFS_KEY",
		"https://host/db?bearer-token-env=LTXVFS_UNSET",
	} {
		_, err := storage.Open(context.Background(), raw)
		show(raw, err)
	}

	// A server that ignores Range gets a warning in the log.
	plain := nginxtest.Start(t, nginxtest.Config{Root: root, IgnoreRange: true})
	if _, err := readFile(open(t, plain.URL+"/replica"+auth, opts), 10, 20); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "ignores Range") {
		t.Fatalf("no warning logged; the log holds:\n%s", logs.String())
	}
	shown = append(shown, logs.String())

	for _, s := range shown {
		if strings.Contains(s, secret) {
			t.Errorf("shown: %q holds the secret", s)
		}
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
