package s3test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestReplicaIsEmptyAndWritable(t *testing.T) {
	srv := Shared(t)
	r := srv.NewReplica(t)
	ctx := context.Background()

	out, err := r.SDK.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(r.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 0 {
		t.Fatalf("new bucket %s holds %d objects", r.Bucket, len(out.Contents))
	}
	if _, err := r.SDK.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(r.Bucket), Key: aws.String("db/x"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	get, err := r.SDK.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(r.Bucket), Key: aws.String("db/x")})
	if err != nil {
		t.Fatal(err)
	}
	defer get.Body.Close()
	if b, _ := io.ReadAll(get.Body); string(b) != "hello" {
		t.Fatalf("read back %q", b)
	}

	if other := srv.NewBucket(t); other == r.Bucket {
		t.Fatalf("two tests got bucket %s", other)
	}
	if !strings.Contains(r.URL, "s3://"+r.Bucket+"/db?") || r.Client.String() == "" {
		t.Fatalf("URL %q, client %q", r.URL, r.Client)
	}
}

func TestStopLeavesNothing(t *testing.T) {
	srv := Start(t)
	if _, err := http.Get(srv.Endpoint); err != nil {
		t.Fatalf("server not answering: %v", err)
	}
	srv.Stop()
	if _, err := os.Stat(srv.dir); !os.IsNotExist(err) {
		t.Fatalf("data dir %s still there after Stop (%v)", srv.dir, err)
	}
	if err := srv.cmd.Process.Signal(syscall.Signal(0)); err == nil {
		t.Fatal("server process still running after Stop")
	}
	srv.Stop() // twice is harmless, as t.Cleanup will do it again
}

func TestBinaryFromEnv(t *testing.T) {
	t.Setenv("VERSITYGW", filepath.Join(t.TempDir(), "missing"))
	if _, err := Binary(); err == nil || !strings.Contains(err.Error(), "VERSITYGW=") {
		t.Fatalf("missing $VERSITYGW binary: got %v, want an error naming VERSITYGW", err)
	}
	exe := filepath.Join(t.TempDir(), "versitygw")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VERSITYGW", exe)
	if got, err := Binary(); err != nil || got != exe {
		t.Fatalf("Binary() = %q, %v; want %q", got, err, exe)
	}
}

// fakeTB records what unavailable asks of a test instead of ending it.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, format
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, format
}

func TestUnavailableFailsInCI(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{{"", false}, {"false", false}, {"true", true}, {"1", true}} {
		t.Setenv("CI", tc.ci)
		f := &fakeTB{TB: t}
		unavailable(f, io.ErrUnexpectedEOF)
		if f.failed != tc.wantFail || f.skipped == tc.wantFail {
			t.Errorf("CI=%q: failed=%v skipped=%v, want failed=%v", tc.ci, f.failed, f.skipped, tc.wantFail)
		}
	}
}

func TestServerRefusesWrongCredentials(t *testing.T) {
	srv := Shared(t)
	c := awss3.New(awss3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		UsePathStyle: true,
		Credentials:  aws.AnonymousCredentials{},
	})
	_, err := c.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String(srv.NewBucket(t)), Key: aws.String("x"), Body: bytes.NewReader(nil)})
	if err == nil {
		t.Fatal("anonymous PUT succeeded: the harness server is open to anyone on loopback")
	}
}
