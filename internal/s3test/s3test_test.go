package s3test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestReplicaIsEmptyAndWritable(t *testing.T) {
	ForEach(t, testReplicaIsEmptyAndWritable)
}

func testReplicaIsEmptyAndWritable(t *testing.T, srv *Server) {
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
	for _, kind := range Kinds {
		t.Run(string(kind), func(t *testing.T) { testStopLeavesNothing(t, kind) })
	}
}

func testStopLeavesNothing(t *testing.T, kind Kind) {
	srv := StartKind(t, kind)
	if srv.Kind != kind {
		t.Fatalf("StartKind(%s) started %s", kind, srv.Kind)
	}
	if _, err := http.Get(srv.Endpoint); err != nil {
		t.Fatalf("server not answering: %v", err)
	}
	srv.Stop()
	if _, err := os.Stat(srv.dir); !os.IsNotExist(err) {
		t.Fatalf("data dir %s still there after Stop (%v)", srv.dir, err)
	}
	if srv.proc.Alive() {
		t.Fatal("server process still running after Stop")
	}
	srv.Stop() // twice is harmless, as t.Cleanup will do it again
}

func TestServerRefusesWrongCredentials(t *testing.T) {
	ForEach(t, testServerRefusesWrongCredentials)
}

func testServerRefusesWrongCredentials(t *testing.T, srv *Server) {
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
