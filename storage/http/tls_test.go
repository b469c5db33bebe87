package httpstore_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/nginxtest"
	"github.com/ltxvfs/ltxvfs/storage"
	httpstore "github.com/ltxvfs/ltxvfs/storage/http"
)

const downgrade = `
        location ^~ /down/ {
            return 302 http://127.0.0.1:$server_port$request_uri;
        }
`

func TestTLS(t *testing.T) {
	root := t.TempDir()
	replicaSite(t, root)
	srv := nginxtest.Start(t, nginxtest.Config{Root: root, TLS: true, Locations: downgrade})

	c := open(t, srv.TLSURL+"/replica", testOptions)
	err := readObject(c, "manifest")
	if err == nil || !strings.Contains(err.Error(), "does not trust") || !strings.Contains(err.Error(), "ca-file=") || strings.Contains(err.Error(), "attempts") {
		t.Fatalf("a server whose CA is not trusted: got %v, want one attempt and a hint to ca-file", err)
	}

	c = open(t, srv.TLSURL+"/down?ca-file="+srv.CAFile, testOptions)
	if err := readObject(c, "manifest"); err == nil || !strings.Contains(err.Error(), "downgrade from https") {
		t.Fatalf("a redirect from https to http: got %v, want it refused", err)
	}

	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ca := range []string{notPEM, filepath.Join(t.TempDir(), "missing.pem")} {
		u, err := storage.ParseURL(srv.TLSURL + "/replica?ca-file=" + ca)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := httpstore.New(u, httpstore.Options{}); err == nil || !strings.Contains(err.Error(), ca) {
			t.Fatalf("ca-file=%s: got %v, want an error naming the file", ca, err)
		}
	}
}

// SSL_CERT_FILE replaces the system's roots, as in every Go program. Go
// reads it once per process, so the check runs in a child test process.
func TestSSLCertFile(t *testing.T) {
	if u := os.Getenv("LTXVFS_TEST_SSL_URL"); u != "" {
		if err := readObject(open(t, u, testOptions), "manifest"); err != nil {
			t.Fatalf("with SSL_CERT_FILE=%s: %v", os.Getenv("SSL_CERT_FILE"), err)
		}
		return
	}
	root := t.TempDir()
	replicaSite(t, root)
	srv := nginxtest.Start(t, nginxtest.Config{Root: root, TLS: true})
	for _, env := range []struct {
		certFile string
		ok       bool
	}{{srv.CAFile, true}, {"/nonexistent.pem", false}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSSLCertFile$", "-test.count=1")
		cmd.Env = append(os.Environ(), "LTXVFS_TEST_SSL_URL="+srv.TLSURL+"/replica", "SSL_CERT_FILE="+env.certFile, "SSL_CERT_DIR=/nonexistent")
		out, err := cmd.CombinedOutput()
		if (err == nil) != env.ok {
			t.Fatalf("SSL_CERT_FILE=%s: the read succeeded: %v, want %v\n%s", env.certFile, err == nil, env.ok, out)
		}
	}
}
