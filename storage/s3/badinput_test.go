package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/storage"
	s3 "github.com/ltxvfs/ltxvfs/storage/s3"
)

func open(t *testing.T, rawURL string, opts s3.Options) *s3.Client {
	t.Helper()
	u, err := storage.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s3.New(context.Background(), u, opts)
	if err != nil {
		t.Fatalf("open %s: %v", rawURL, err)
	}
	return c
}

func wantErr(t *testing.T, what string, err error, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("%s: error %q does not say %q", what, err, s)
		}
	}
}

func TestMissingBucket(t *testing.T) { s3test.ForEach(t, testMissingBucket) }

func testMissingBucket(t *testing.T, srv *s3test.Server) {
	c := srv.Client(t, srv.URL("no-such-bucket", "db"))
	ctx := context.Background()

	_, err := storage.ListLevel(ctx, c, 0, 0, false)
	wantErr(t, "list", err, `bucket "no-such-bucket" does not exist`, "s3://no-such-bucket/db/0000/")
	_, err = c.OpenLTXFile(ctx, 0, 1, 1, 0, 0)
	wantErr(t, "open", err, `bucket "no-such-bucket" does not exist`, "s3://no-such-bucket/db/0000/0000000000000001-0000000000000001.ltx")
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a missing bucket passes for a missing file: %v", err)
	}
	if !errors.Is(err, storage.ErrNoBucket) {
		t.Fatalf("a missing bucket does not match storage.ErrNoBucket: %v", err)
	}
	_, err = c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(ltxFiles(t, 1)[0]))
	wantErr(t, "write", err, `bucket "no-such-bucket" does not exist`)
	wantErr(t, "delete all", c.DeleteAll(ctx), `bucket "no-such-bucket" does not exist`)
}

func TestWrongCredentials(t *testing.T) { s3test.ForEach(t, testWrongCredentials) }

func testWrongCredentials(t *testing.T, srv *s3test.Server) {
	bucket := srv.NewBucket(t)
	const secret = "not-the-secret-0123456789"
	for name, creds := range map[string]credentials.StaticCredentialsProvider{
		"unknown key":  credentials.NewStaticCredentialsProvider("no-such-key", secret, ""),
		"wrong secret": credentials.NewStaticCredentialsProvider(s3test.AccessKey, secret, ""),
	} {
		t.Run(name, func(t *testing.T) {
			c := open(t, srv.URL(bucket, "db"), s3.Options{Credentials: creds, MaxBackoff: time.Millisecond})
			ctx := context.Background()
			_, err := storage.ListLevel(ctx, c, 0, 0, false)
			wantErr(t, "list", err, "access to bucket", "denied", "credentials", "s3://"+bucket+"/db/0000/")
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error shows the secret key: %v", err)
			}
			_, err = c.OpenLTXFile(ctx, 0, 1, 1, 0, 0)
			wantErr(t, "open", err, "denied", "0000000000000001-0000000000000001.ltx")
			if errors.Is(err, os.ErrNotExist) {
				t.Fatalf("refused credentials pass for a missing file: %v", err)
			}
			_, err = c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(ltxFiles(t, 1)[0]))
			wantErr(t, "write", err, "denied")
			if strings.Contains(c.String(), secret) {
				t.Fatalf("String() shows the secret: %s", c)
			}
		})
	}
}

func TestCredentialsNeverInURL(t *testing.T) {
	u, err := storage.ParseURL("s3://bucket/db?endpoint=http://key:s3cr3t@127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s3.New(context.Background(), u, s3.Options{})
	wantErr(t, "endpoint with credentials", err, "credentials do not belong in the endpoint")
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error shows the secret: %v", err)
	}
}

func TestReadPastEnd(t *testing.T) { s3test.ForEach(t, testReadPastEnd) }

func testReadPastEnd(t *testing.T, srv *s3test.Server) {
	r := srv.NewReplica(t)
	ctx := context.Background()
	file := ltxFiles(t, 1)[0]
	if _, err := r.Client.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(file)); err != nil {
		t.Fatal(err)
	}
	n := int64(len(file))
	for _, rg := range []struct{ off, size int64 }{{n, 0}, {n + 10, 0}, {n + 10, 5}} {
		rc, err := r.Client.OpenLTXFile(ctx, 0, 1, 1, rg.off, rg.size)
		if err == nil {
			rc.Close()
		}
		wantErr(t, "range past the end", err, "past the end", "s3://"+r.Bucket+"/db/0000/0000000000000001-0000000000000001.ltx")
	}

	rc, err := r.Client.OpenLTXFile(ctx, 0, 1, 1, n-4, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(got, file[n-4:]) {
		t.Fatalf("range running past the end: read %d bytes, %v; want the 4 there and io.ErrUnexpectedEOF", len(got), err)
	}
	if _, err := r.Client.OpenLTXFile(ctx, 0, 1, 1, -1, 0); err == nil {
		t.Fatal("negative offset accepted")
	}
	if _, err := r.Client.OpenLTXFile(ctx, 10, 1, 1, 0, 0); err == nil {
		t.Fatal("level 10 accepted")
	}
}

func TestRefusesWhatIsNotLTX(t *testing.T) { s3test.ForEach(t, testRefusesWhatIsNotLTX) }

func testRefusesWhatIsNotLTX(t *testing.T, srv *s3test.Server) {
	r := srv.NewReplica(t)
	ctx := context.Background()
	for name, body := range map[string][]byte{
		"empty":     nil,
		"short":     []byte("LTX1"),
		"not LTX":   bytes.Repeat([]byte("x"), 200),
		"truncated": ltxFiles(t, 1)[0][:50],
	} {
		if _, err := r.Client.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(body)); err == nil {
			t.Errorf("%s: write succeeded", name)
		}
	}
	if got := keys(t, r); len(got) != 0 {
		t.Fatalf("refused writes left %v", got)
	}
}

// deadEndpoint is a loopback address where nothing listens.
func deadEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestUnreachableEndpoint(t *testing.T) {
	ep := deadEndpoint(t)
	c := open(t, "s3://bucket/db?force-path-style=true&endpoint="+ep, s3.Options{
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
		MaxAttempts: 3,
		MaxBackoff:  time.Millisecond,
	})
	if !strings.Contains(c.String(), ep) {
		t.Fatalf("String() = %q does not name the endpoint", c)
	}
	_, err := storage.ListLevel(context.Background(), c, 0, 0, false)
	wantErr(t, "list", err, "s3://bucket/db/0000/", "connection refused", "attempts, 3")
	_, err = c.OpenLTXFile(context.Background(), 0, 1, 1, 0, 0)
	wantErr(t, "open", err, "0000000000000001-0000000000000001.ltx", "connection refused")
}

// TestCancelWhileRetrying cancels a request that is backing off between
// attempts on a dead endpoint: it ends with the context's error, not after
// the remaining attempts.
func TestCancelWhileRetrying(t *testing.T) {
	c := open(t, "s3://bucket/db?force-path-style=true&endpoint="+deadEndpoint(t), s3.Options{
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
		MaxAttempts: 1000,
		MaxBackoff:  time.Hour,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := storage.ListLevel(ctx, c, 0, 0, false)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	_, err = c.OpenLTXFile(ctx, 0, 1, 1, 0, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
}
