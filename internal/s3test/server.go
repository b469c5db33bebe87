package s3test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ltxvfs/ltxvfs/internal/testbin"
)

// Test credentials of every server; they guard nothing but a temp dir on
// loopback.
const (
	AccessKey = "ltxvfs-test-access"
	SecretKey = "ltxvfs-test-secret"
	Region    = "us-east-1"
)

const readyTimeout = 30 * time.Second

// Server is an S3 server process serving a temp directory on loopback.
type Server struct {
	// Kind is the server's implementation.
	Kind Kind
	// Endpoint is the server's URL, http://127.0.0.1:PORT.
	Endpoint string

	dir  string
	proc *testbin.Process

	stopOnce sync.Once
}

type sharedServer struct {
	once sync.Once
	srv  *Server
	err  error
}

var shared = map[Kind]*sharedServer{Versitygw: {}, MinIO: {}}

// Shared returns the versitygw server of this test process, starting it on
// first use. It is stopped by Run; a test binary that dies takes it along.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	return SharedKind(tb, Versitygw)
}

// SharedKind returns this test process's server of a kind, started on
// first use.
func SharedKind(tb testing.TB, kind Kind) *Server {
	tb.Helper()
	s := shared[kind]
	s.once.Do(func() { s.srv, s.err = start(kind) })
	if s.err != nil {
		unavailable(tb, kind, s.err)
	}
	return s.srv
}

// ForEach runs f as a subtest on the shared server of every kind (named
// for the kind), for the tests that must hold on each.
func ForEach(t *testing.T, f func(t *testing.T, srv *Server)) {
	t.Helper()
	for _, kind := range Kinds {
		t.Run(string(kind), func(t *testing.T) { f(t, SharedKind(t, kind)) })
	}
}

// Run runs the tests of a package and stops the shared servers after them.
// Call it from TestMain: os.Exit(s3test.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	for _, s := range shared {
		if s.srv != nil {
			s.srv.Stop()
		}
	}
	return code
}

// Start starts a versitygw server for one test, stopped when the test
// ends: for tests that stop or break their server.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartKind(tb, Versitygw)
}

// StartKind starts a server of a kind for one test.
func StartKind(tb testing.TB, kind Kind) *Server {
	tb.Helper()
	srv, err := start(kind)
	if err != nil {
		unavailable(tb, kind, err)
	}
	tb.Cleanup(srv.Stop)
	return srv
}

// unavailable skips the test, or fails it in CI, where a skipped S3 test
// would pass for a tested backend.
func unavailable(tb testing.TB, kind Kind, err error) {
	tb.Helper()
	testbin.Unavailable(tb, "S3 test server "+string(kind), err)
}

func start(kind Kind) (*Server, error) {
	bin, err := Binary(kind)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ltxvfs-"+string(kind)+"-*")
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", kind, err)
	}
	var srv *Server
	err = testbin.OnFreePorts(2, func(ports []int) error {
		srv, err = startOn(kind, bin, dir, ports)
		return err
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return srv, nil
}

// command is how a kind of server is started on ports (the S3 API on the
// first) to serve dir.
func command(kind Kind, dir string, ports []int) (args, env []string) {
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	switch kind {
	case MinIO:
		args = []string{"server", dir, "--address", addr, "--console-address", "127.0.0.1:" + strconv.Itoa(ports[1]), "--quiet"}
		env = append(testbin.EnvironWithout("MINIO_"),
			"MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	default:
		args = []string{"--port", addr, "--keep-alive", "--quiet", "posix", dir}
		env = append(testbin.EnvironWithout("VGW_", "ROOT_"), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	}
	return args, env
}

func startOn(kind Kind, bin, dir string, ports []int) (*Server, error) {
	args, env := command(kind, dir, ports)
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	proc, err := testbin.Start(bin, args, env)
	if err != nil {
		return nil, err
	}
	srv := &Server{Kind: kind, Endpoint: "http://" + addr, dir: dir, proc: proc}
	if err := srv.waitReady(); err != nil {
		proc.Kill()
		out := proc.Output()
		if strings.Contains(out, "already in use") {
			return nil, fmt.Errorf("start %s on %s: %w", kind, addr, testbin.ErrPortInUse)
		}
		return nil, fmt.Errorf("start %s on %s: %w\n%s", kind, addr, err, testbin.Tail(out, 2000))
	}
	return srv, nil
}

// waitReady polls until the server answers an authenticated ListBuckets,
// which also proves that what answers is our server and not another one
// that took the port.
func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := s.sdk(func(o *awss3.Options) { o.RetryMaxAttempts = 1 })
	var lastErr error
	for {
		callCtx, callCancel := context.WithTimeout(ctx, time.Second)
		_, err := client.ListBuckets(callCtx, &awss3.ListBucketsInput{})
		callCancel()
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-s.proc.Exited():
			return fmt.Errorf("exited before it was ready (%v)", s.proc.State())
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", readyTimeout, lastErr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stop stops the server and removes its data.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.proc.Kill()
		os.RemoveAll(s.dir)
	})
}

// Credentials are the server's root credentials.
func (s *Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")
}

// SDK returns a plain SDK client for the server, for what the backend under
// test must not be trusted with: creating buckets, planting foreign objects,
// looking at what was really stored.
func (s *Server) SDK(tb testing.TB) *awss3.Client {
	tb.Helper()
	return s.sdk()
}

func (s *Server) sdk(optFns ...func(*awss3.Options)) *awss3.Client {
	// Built without LoadDefaultConfig, so that no shared AWS config or
	// environment of the machine running the tests changes what it does.
	return awss3.New(awss3.Options{
		Region:                     Region,
		Credentials:                s.Credentials(),
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}, optFns...)
}
