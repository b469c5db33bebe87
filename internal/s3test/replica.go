package s3test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ltxvfs/ltxvfs/storage"
	ltxs3 "github.com/ltxvfs/ltxvfs/storage/s3"
)

// Replica is an empty replica in a bucket of its own.
type Replica struct {
	Client *ltxs3.Client // the backend under test
	SDK    *awss3.Client // the raw SDK, for planting and inspecting objects
	Bucket string
	Prefix string
	URL    string // the replica's s3:// URL, with endpoint and path style
}

var bucketSeq atomic.Int64

// NewBucket creates a bucket with a name no other test of this process uses.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("ltxvfs-test-%d", bucketSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.sdk().CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("create bucket %s on %s: %v", name, s.Endpoint, err)
	}
	return name
}

// BucketDir is the directory where the server keeps a bucket's objects,
// one file per key (<dir>/<key>): a web server that serves it serves the
// bucket as a public bucket or a CDN would.
func (s *Server) BucketDir(bucket string) string { return filepath.Join(s.dir, bucket) }

// URL is the replica URL of bucket/prefix on this server.
func (s *Server) URL(bucket, prefix string) string {
	q := url.Values{"endpoint": {s.Endpoint}, "region": {Region}, "force-path-style": {"true"}}
	return "s3://" + bucket + "/" + prefix + "?" + q.Encode()
}

// Options are the client options for this server: its credentials, and
// short backoffs so that a test never waits long on a retry.
func (s *Server) Options() ltxs3.Options {
	return ltxs3.Options{Credentials: s.Credentials(), MaxBackoff: 50 * time.Millisecond}
}

// Client opens the backend on a replica URL with the server's options.
func (s *Server) Client(tb testing.TB, rawURL string) *ltxs3.Client {
	tb.Helper()
	u, err := storage.ParseURL(rawURL)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := ltxs3.New(context.Background(), u, s.Options())
	if err != nil {
		tb.Fatalf("open %s: %v", rawURL, err)
	}
	return c
}

// NewReplica creates a fresh bucket and returns a replica under a prefix in
// it.
func (s *Server) NewReplica(tb testing.TB) *Replica {
	tb.Helper()
	bucket := s.NewBucket(tb)
	const prefix = "db"
	u := s.URL(bucket, prefix)
	return &Replica{
		Client: s.Client(tb, u),
		SDK:    s.sdk(),
		Bucket: bucket,
		Prefix: prefix,
		URL:    u,
	}
}

// Setenv points the standard AWS credential chain at the server for the
// rest of the test, for code that opens replicas by URL alone (storage.Open,
// the CLI). Tests that use it cannot run in parallel.
func (s *Server) Setenv(tb testing.TB) {
	tb.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	tb.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	tb.Setenv("AWS_SESSION_TOKEN", "")
	tb.Setenv("AWS_REGION", Region)
}
