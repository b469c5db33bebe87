package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"gopkg.in/yaml.v3"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/s3"
)

// LsReplicaSettings are the replica settings of Litestream's config that
// ltx-writer maps; the top level of the file gives defaults for every
// replica (Litestream v0.5.3).
type LsReplicaSettings struct {
	SyncInterval    *duration `yaml:"sync-interval"`
	AccessKeyID     string    `yaml:"access-key-id"`
	SecretAccessKey string    `yaml:"secret-access-key"`
	Region          string    `yaml:"region"`
	Bucket          string    `yaml:"bucket"`
	Endpoint        string    `yaml:"endpoint"`
	ForcePathStyle  *bool     `yaml:"force-path-style"`
}

// lsReplica is a database's replica: a type with its fields, or a url.
type lsReplica struct {
	LsReplicaSettings `yaml:",inline"`

	Type string `yaml:"type"`
	Name string `yaml:"name"`
	Path string `yaml:"path"`
	URL  string `yaml:"url"`

	line    int
	ignored []string // query parameters of url that ltx-writer ignores
}

func (r *lsReplica) UnmarshalYAML(n *yaml.Node) error {
	type plain lsReplica
	r.line = n.Line
	return n.Decode((*plain)(r))
}

// setDefaults fills the settings the replica leaves empty from the top
// level's, as Litestream's ReplicaSettings.SetDefaults does.
func (r *lsReplica) setDefaults(g *LsReplicaSettings) {
	if r.SyncInterval == nil {
		r.SyncInterval = g.SyncInterval
	}
	for _, f := range []struct{ v, g *string }{
		{&r.AccessKeyID, &g.AccessKeyID}, {&r.SecretAccessKey, &g.SecretAccessKey},
		{&r.Region, &g.Region}, {&r.Bucket, &g.Bucket}, {&r.Endpoint, &g.Endpoint},
	} {
		if *f.v == "" {
			*f.v = *f.g
		}
	}
	if r.ForcePathStyle == nil {
		r.ForcePathStyle = g.ForcePathStyle
	}
}

var isURL = regexp.MustCompile(`^(\w+)://`) // Litestream's IsURL

// replicaType is the replica's type as Litestream reads it: the scheme of
// its url, else its type, else file.
func (r *lsReplica) replicaType() string {
	if m := isURL.FindStringSubmatch(r.URL); m != nil {
		if scheme := strings.ToLower(m[1]); scheme != "webdavs" {
			return scheme
		}
		return "webdav"
	}
	if r.Type != "" {
		return r.Type
	}
	return "file"
}

// open returns the replica URL that ltx-writer opens for r, and the
// credentials of the config, if any, for an S3 replica. The URL holds no
// secret: the credentials go to the S3 client itself.
func (r *lsReplica) open() (string, aws.CredentialsProvider, error) {
	if isURL.MatchString(r.Path) {
		return "", nil, errors.New("replica path is a URL: give it as url: instead")
	}
	switch t := r.replicaType(); t {
	case "file":
		u, err := r.fileURL()
		return u, nil, err
	case "s3":
		u, err := r.s3URL()
		if err != nil {
			return "", nil, err
		}
		creds, err := r.credentials()
		return u, creds, err
	default:
		return "", nil, fmt.Errorf("replica type %q is not supported: ltx-writer writes to s3 (and S3-compatible) and file replicas", t)
	}
}

func (r *lsReplica) fileURL() (string, error) {
	p := r.Path
	if r.URL != "" {
		if p != "" {
			return "", errors.New("file replica: give url: or path:, not both")
		}
		u, err := storage.ParseURL(r.URL)
		if err != nil {
			return "", fmt.Errorf("replica url: %w", err)
		}
		p = u.Path
	}
	if p == "" {
		return "", errors.New("file replica: missing path (the replica's directory)")
	}
	return expandPath(p)
}

// s3URL builds the replica's s3:// URL from its fields and url as
// Litestream's NewS3ReplicaClientFromConfig does: the fields win over
// the url's parts, and an endpoint means path-style addressing unless
// force-path-style says otherwise.
func (r *lsReplica) s3URL() (string, error) {
	switch {
	case r.URL != "" && r.Path != "":
		return "", errors.New("s3 replica: give url: or path:, not both")
	case r.URL != "" && r.Bucket != "":
		return "", errors.New("s3 replica: give url: or bucket: (here or at the top level), not both")
	}
	bucket, prefix, region, endpoint := r.Bucket, r.Path, r.Region, r.Endpoint
	if endpoint != "" && !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		endpoint = "https://" + endpoint // as Litestream's configureEndpoint
	}
	pathStyle := endpoint != ""
	if r.ForcePathStyle != nil {
		pathStyle = *r.ForcePathStyle
	}
	// Litestream builds keys as path + "/" + level: a path that is not
	// clean gives keys (//0000/..., /db/0000/...) that ltx-writer, which
	// trims slashes, would not write, and a replica Litestream wrote there
	// would silently be left behind.
	if prefix != cleanPrefix(prefix) {
		return "", fmt.Errorf("s3 replica path %q: Litestream writes its keys under %q, ltx-writer under %q; write path: %s (and move any objects already there)",
			prefix, prefix+"/", cleanPrefix(prefix)+"/", cleanPrefix(prefix))
	}
	if r.URL != "" {
		u, err := parseLitestreamS3URL(r.URL)
		if err != nil {
			return "", err
		}
		r.ignored = u.ignored
		prefix = u.prefix
		bucket = u.bucket
		if region == "" {
			region = u.region
		}
		if endpoint == "" {
			endpoint = u.endpoint
		}
		if !pathStyle {
			pathStyle = u.pathStyle
		}
	}
	if bucket == "" {
		return "", errors.New("s3 replica: missing bucket")
	}
	q := url.Values{"force-path-style": {strconv.FormatBool(pathStyle)}}
	if endpoint != "" {
		q.Set("endpoint", endpoint)
	}
	if region != "" {
		q.Set("region", region)
	}
	u := url.URL{Scheme: "s3", Host: bucket, Path: "/" + prefix, RawQuery: q.Encode()}
	if _, err := storage.ParseURL(u.String()); err != nil {
		return "", fmt.Errorf("s3 replica: %w", err)
	}
	return u.String(), nil
}

func cleanPrefix(p string) string {
	c := strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return ""
	}
	return c
}

// lsS3URL is what Litestream reads from an s3:// url of a config.
type lsS3URL struct {
	bucket, prefix, region, endpoint string
	pathStyle                        bool
	ignored                          []string // the other query parameters
}

// parseLitestreamS3URL reads an s3:// replica url as Litestream v0.5
// does: the host may name a provider (bucket.s3.us-west-2.amazonaws.com,
// bucket.localhost:9000, ...), and the query may give endpoint, region
// and forcePathStyle. Litestream ignores most other parameters in a config
// file's url; ltx-writer ignores them all, with a warning, except
// skipVerify=true, refused as the skip-verify key is.
func parseLitestreamS3URL(raw string) (lsS3URL, error) {
	var out lsS3URL
	if strings.HasPrefix(strings.ToLower(raw), "s3://arn:") {
		return out, errors.New("replica url: S3 access point ARNs are not supported; give the bucket")
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil {
		return out, fmt.Errorf("replica url %q: not a URL of the form s3://bucket/path (credentials go in access-key-id and secret-access-key)", storage.Redact(raw))
	}
	out.prefix = strings.TrimPrefix(path.Clean("/"+u.Path), "/")
	if out.prefix == "" {
		return out, fmt.Errorf("replica url %q: give a path in the bucket, as in s3://bucket/db", storage.Redact(raw))
	}
	out.bucket, out.region, out.endpoint, out.pathStyle = parseS3Host(u.Host)
	q := u.Query()
	if v := q.Get("endpoint"); v != "" {
		out.endpoint = ensureScheme(v)
		out.pathStyle = q.Get("forcePathStyle") != "false"
	}
	if v := q.Get("region"); v != "" {
		out.region = v
	}
	for _, k := range []string{"forcePathStyle", "force-path-style"} {
		if v := q.Get(k); v != "" {
			out.pathStyle = v == "true"
		}
	}
	for k := range q {
		switch {
		case k == "endpoint" || k == "region" || k == "forcePathStyle" || k == "force-path-style":
		case (k == "skipVerify" || k == "skip-verify") && q.Get(k) == "true":
			return out, fmt.Errorf("replica url: %s=true: TLS verification cannot be turned off; trust the server's certificate with AWS_CA_BUNDLE=FILE instead", k)
		default:
			out.ignored = append(out.ignored, k)
		}
	}
	sort.Strings(out.ignored)
	return out, nil
}

// Litestream's s3.ParseHost patterns.
var (
	awsS3Host     = regexp.MustCompile(`^(.+)\.s3(?:\.([^.]+))?\.amazonaws\.com$`)
	doSpacesHost  = regexp.MustCompile(`^(?:(.+)\.)?([^.]+)\.digitaloceanspaces.com$`)
	backblazeHost = regexp.MustCompile(`^(?:(.+)\.)?s3.([^.]+)\.backblazeb2.com$`)
	filebaseHost  = regexp.MustCompile(`^(?:(.+)\.)?s3.filebase.com$`)
	scalewayHost  = regexp.MustCompile(`^(?:(.+)\.)?s3.([^.]+)\.scw\.cloud$`)
)

// parseS3Host is Litestream's s3.ParseHost: the bucket, region, endpoint
// and addressing style a url's host names. Filebase gets path style, as
// Litestream's provider defaults give it.
func parseS3Host(host string) (bucket, region, endpoint string, pathStyle bool) {
	if strings.Contains(host, ":") && !strings.Contains(host, ".com") {
		if b, h, ok := strings.Cut(host, "."); ok {
			return b, s3.DefaultRegion, "http://" + h, true // MinIO: bucket.host:port
		}
		return "", "", "http://" + host, true
	}
	if a := awsS3Host.FindStringSubmatch(host); a != nil {
		return a[1], a[2], "", false
	} else if a := doSpacesHost.FindStringSubmatch(host); a != nil {
		return a[1], a[2], "https://" + a[2] + ".digitaloceanspaces.com", false
	} else if a := backblazeHost.FindStringSubmatch(host); a != nil {
		return a[1], a[2], "https://s3." + a[2] + ".backblazeb2.com", true
	} else if a := filebaseHost.FindStringSubmatch(host); a != nil {
		return a[1], "", "https://s3.filebase.com", true
	} else if a := scalewayHost.FindStringSubmatch(host); a != nil {
		return a[1], a[2], "https://s3." + a[2] + ".scw.cloud", false
	}
	return host, "", "", false
}

// ensureScheme gives an endpoint without one http:// for a local or
// private host and https:// for any other, as Litestream's
// EnsureEndpointScheme.
func ensureScheme(endpoint string) string {
	if strings.HasPrefix(endpoint, "http://") || strings.HasPrefix(endpoint, "https://") {
		return endpoint
	}
	host := endpoint
	if h, _, err := net.SplitHostPort(endpoint); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, ".local") ||
		ip != nil && (ip.IsLoopback() || ip.IsPrivate()) {
		return "http://" + endpoint
	}
	return "https://" + endpoint
}

// credentials are the static credentials of the config, or, as Litestream
// reads them when the config gives none, of LITESTREAM_ACCESS_KEY_ID and
// LITESTREAM_SECRET_ACCESS_KEY where the AWS_ variables are not set. Nil
// leaves the standard AWS chain (environment, profiles, roles) to the
// client.
func (r *lsReplica) credentials() (aws.CredentialsProvider, error) {
	key, secret := r.AccessKeyID, r.SecretAccessKey
	if key == "" && secret == "" {
		fromEnv := false
		for _, v := range []struct {
			dst        *string
			aws, lsenv string
		}{{&key, "AWS_ACCESS_KEY_ID", "LITESTREAM_ACCESS_KEY_ID"}, {&secret, "AWS_SECRET_ACCESS_KEY", "LITESTREAM_SECRET_ACCESS_KEY"}} {
			if s, ok := os.LookupEnv(v.aws); ok {
				*v.dst = s
			} else if s, ok := os.LookupEnv(v.lsenv); ok {
				*v.dst, fromEnv = s, true
			}
		}
		if !fromEnv {
			return nil, nil
		}
	}
	switch {
	case key == "":
		return nil, errors.New("s3 replica: secret-access-key given without access-key-id")
	case secret == "":
		return nil, errors.New("s3 replica: access-key-id given without secret-access-key")
	}
	return credentials.NewStaticCredentialsProvider(key, secret, ""), nil
}

// openReplica opens a database's replica, with the credentials of its
// config when it has some.
func (db *databaseConfig) openReplica(ctx context.Context) (storage.Client, error) {
	if db.credentials == nil {
		return storage.Open(ctx, db.Replica)
	}
	u, err := storage.ParseURL(db.Replica)
	if err != nil {
		return nil, err
	}
	c, err := s3.New(ctx, u, s3.Options{Credentials: db.credentials})
	if err != nil {
		return nil, fmt.Errorf("open replica %s: %w", u, err)
	}
	return c, nil
}
