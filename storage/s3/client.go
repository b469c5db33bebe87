package s3

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

func init() {
	storage.Register("s3", func(ctx context.Context, u *storage.URL) (storage.Client, error) {
		return New(ctx, u, Options{})
	})
}

// MetadataKeyTimestamp is the object metadata that carries an LTX file's
// header timestamp, under the name Litestream gives it.
const MetadataKeyTimestamp = "litestream-timestamp"

// DefaultRegion is the region used with a custom endpoint when neither the URL
// nor the AWS configuration names one; S3-compatible servers mostly ignore it
// but signing needs one.
const DefaultRegion = "us-east-1"

// Defaults for Options.
const (
	DefaultMaxAttempts         = 5
	DefaultMaxBackoff          = 5 * time.Second
	DefaultMetadataConcurrency = 32
)

// Options tune a Client beyond what a replica URL says. The zero value is
// what storage.Open uses.
type Options struct {
	// Credentials replaces the standard AWS credential chain (environment,
	// shared config and profiles, container and instance roles).
	Credentials aws.CredentialsProvider

	// HTTPClient replaces the default client, whose pool is sized for many
	// small ranged reads in flight at once (see NewHTTPClient). It is a
	// BuildableClient because the SDK applies AWS_CA_BUNDLE to it.
	HTTPClient *awshttp.BuildableClient

	// MaxAttempts bounds the attempts of one request on a retryable failure
	// (5xx, throttling, timeouts, refused connections): DefaultMaxAttempts
	// when 0; 1 disables retries.
	MaxAttempts int

	// MaxBackoff caps the delay between two attempts; DefaultMaxBackoff
	// when 0.
	MaxBackoff time.Duration

	// MetadataConcurrency bounds the HEAD requests in flight when a listing
	// reads each file's timestamp metadata; DefaultMetadataConcurrency when 0.
	MetadataConcurrency int
}

var _ storage.AllLister = (*Client)(nil)

// Client is a replica in an S3 bucket, under a key prefix.
type Client struct {
	s3        *s3.Client
	bucket    string
	prefix    string
	desc      string
	headLimit int

	// slashless is set once the server is seen to drop the leading slash
	// of keys under an empty prefix (see objectsUnder).
	slashless atomic.Bool
	// noConditions is set once the lease found that the server refuses
	// conditional writes (501): LTX files are then PUT unconditionally
	// (see WriteLTXFile).
	noConditions atomic.Bool
}

// New makes a client for the S3 replica u. It loads the AWS configuration
// (credentials are resolved lazily, on the first request) and, for AWS itself
// when no region is configured, asks S3 for the bucket's region.
func New(ctx context.Context, u *storage.URL, opts Options) (*Client, error) {
	if u == nil || u.Scheme != "s3" {
		return nil, fmt.Errorf("%w: the s3 backend needs an s3:// URL", storage.ErrInvalidURL)
	}
	if u.Bucket == "" {
		return nil, fmt.Errorf("%w %q: bucket required, as in s3://bucket/prefix", storage.ErrInvalidURL, u)
	}
	desc, err := describe(u)
	if err != nil {
		return nil, err
	}

	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MetadataConcurrency <= 0 {
		opts.MetadataConcurrency = DefaultMetadataConcurrency
	}
	httpClient := opts.HTTPClient
	if httpClient == nil {
		httpClient = NewHTTPClient()
	}

	loadOpts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer { return newRetryer(opts.MaxAttempts, opts.MaxBackoff) }),
	}
	if opts.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(opts.Credentials))
	}
	if u.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(u.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("%s: load AWS configuration: %w", desc, err)
	}

	clientOpts := func(o *s3.Options) {
		o.UsePathStyle = u.ForcePathStyle
		if u.Endpoint != "" {
			o.BaseEndpoint = aws.String(u.Endpoint)
			// S3-compatible servers reject the aws-chunked bodies and
			// trailing checksums the SDK sends by default.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	}
	if cfg.Region == "" {
		if u.Endpoint != "" {
			cfg.Region = DefaultRegion
		} else if cfg.Region, err = bucketRegion(ctx, cfg, u.Bucket, clientOpts); isNotFound(err) {
			return nil, fmt.Errorf("%s: bucket %q does not exist: %w", desc, u.Bucket, err)
		} else if err != nil {
			return nil, fmt.Errorf("%s: find the bucket's region (or give one with ?region=): %w", desc, classify(err, u.Bucket))
		}
	}

	return &Client{
		s3:        s3.NewFromConfig(cfg, clientOpts),
		bucket:    u.Bucket,
		prefix:    u.Prefix,
		desc:      desc,
		headLimit: opts.MetadataConcurrency,
	}, nil
}

// describe names the replica for logs and errors: the bucket, the prefix and
// the endpoint's scheme and host, nothing that could hold a secret.
func describe(u *storage.URL) (string, error) {
	desc := "s3://" + u.Bucket
	if u.Prefix != "" {
		desc += "/" + u.Prefix
	}
	if u.Endpoint == "" {
		return desc, nil
	}
	ep, err := url.Parse(u.Endpoint)
	if err != nil || ep.Host == "" {
		return "", fmt.Errorf("%w %q: endpoint is not a host or http(s) URL", storage.ErrInvalidURL, u)
	}
	if ep.User != nil {
		return "", fmt.Errorf("%w %q: credentials do not belong in the endpoint; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a shared AWS profile", storage.ErrInvalidURL, desc)
	}
	return desc + " at " + ep.Scheme + "://" + ep.Host, nil
}

func (c *Client) String() string { return c.desc }

// Bucket is the bucket of the replica.
func (c *Client) Bucket() string { return c.bucket }

// Prefix is the key prefix of the replica, without leading or trailing
// slash.
func (c *Client) Prefix() string { return c.prefix }

// key is the object key of one LTX file, as Litestream builds it.
func (c *Client) key(level int, minTXID, maxTXID ltx.TXID) string {
	return storage.ObjectKey(c.prefix, level, minTXID, maxTXID)
}

// name is how errors refer to an object: its full s3:// address.
func (c *Client) name(key string) string {
	return "s3://" + c.bucket + "/" + strings.TrimPrefix(key, "/")
}

// bucketRegion asks S3 in us-east-1 where a bucket lives: S3 names the
// region in the x-amz-bucket-region header of the answer, even of a redirect
// or a refusal.
func bucketRegion(ctx context.Context, cfg aws.Config, bucket string, optFns ...func(*s3.Options)) (string, error) {
	cfg = cfg.Copy()
	cfg.Region = DefaultRegion
	out, err := s3.NewFromConfig(cfg, optFns...).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		if out.BucketRegion != nil && *out.BucketRegion != "" {
			return *out.BucketRegion, nil
		}
		return DefaultRegion, nil
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		if region := re.Response.Header.Get("X-Amz-Bucket-Region"); region != "" {
			return region, nil
		}
	}
	return "", err
}
