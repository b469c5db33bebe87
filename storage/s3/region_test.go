package s3

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestBucketRegion: S3 names a bucket's region in a header, whether it
// answers HeadBucket with 200, a redirect or a refusal.
func TestBucketRegion(t *testing.T) {
	for _, tc := range []struct {
		status int
		region string
	}{{200, "ap-south-1"}, {301, "eu-west-3"}, {403, "us-west-2"}, {200, ""}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodHead || r.URL.Path != "/bucket" {
				t.Errorf("asked %s %s, want HEAD /bucket", r.Method, r.URL.Path)
			}
			if tc.region != "" {
				w.Header().Set("X-Amz-Bucket-Region", tc.region)
			}
			w.WriteHeader(tc.status)
		}))
		cfg := aws.Config{
			Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
			HTTPClient:  awshttp.NewBuildableClient(),
			Retryer:     func() aws.Retryer { return newRetryer(1, 0) },
		}
		got, err := bucketRegion(context.Background(), cfg, "bucket", func(o *s3.Options) {
			o.BaseEndpoint = aws.String(srv.URL)
			o.UsePathStyle = true
		})
		srv.Close()
		want := tc.region
		if want == "" {
			want = DefaultRegion
		}
		if err != nil || got != want {
			t.Fatalf("status %d, header %q: got %q, %v; want %q", tc.status, tc.region, got, err, want)
		}
	}
}
