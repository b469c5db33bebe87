package s3test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ltxvfs/ltxvfs/internal/testproc"
)

// Test credentials of every server; they guard nothing but a temp dir on
// loopback.
const (
	AccessKey = "ltxvfs-test-access"
	SecretKey = "ltxvfs-test-secret"
	Region    = "us-east-1"
)

const (
	readyTimeout = 20 * time.Second
	portAttempts = 5
)

// Server is a versitygw process serving a temp directory on loopback.
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:PORT.
	Endpoint string

	dir    string
	cmd    *exec.Cmd
	exited <-chan struct{}
	stderr *testproc.Buffer

	stopOnce sync.Once
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the server of this test process, starting it on first use.
// It is stopped by Run; a test binary that dies takes it along.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.once.Do(func() { shared.srv, shared.err = start() })
	if shared.err != nil {
		unavailable(tb, shared.err)
	}
	return shared.srv
}

// Run runs the tests of a package and stops the shared server after them.
// Call it from TestMain: os.Exit(s3test.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	return code
}

// Start starts a server for one test, stopped when the test ends: for tests
// that stop or break their server.
func Start(tb testing.TB) *Server {
	tb.Helper()
	srv, err := start()
	if err != nil {
		unavailable(tb, err)
	}
	tb.Cleanup(srv.Stop)
	return srv
}

// unavailable skips the test, or fails it in CI, where a skipped S3 test
// would pass for a tested backend.
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	testproc.Unavailable(tb, "S3 test server", err)
}

func start() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ltxvfs-versitygw-*")
	if err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	for attempt := 1; ; attempt++ {
		srv, err := startOn(bin, dir)
		if err == nil {
			return srv, nil
		}
		// Another process may take the free port between our probe and
		// versitygw's bind.
		if !errors.Is(err, errPortInUse) || attempt == portAttempts {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

var errPortInUse = errors.New("port in use")

func startOn(bin, dir string) (*Server, error) {
	port, err := testproc.FreePort()
	if err != nil {
		return nil, fmt.Errorf("start versitygw: find a free port: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	srv := &Server{
		Endpoint: "http://" + addr,
		dir:      dir,
		stderr:   &testproc.Buffer{},
	}
	cmd := exec.Command(bin, "--port", addr, "--keep-alive", "--quiet", "posix", dir)
	cmd.Env = append(environWithout("VGW_", "ROOT_"), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	cmd.Stdout, cmd.Stderr = srv.stderr, srv.stderr
	srv.cmd = cmd
	if srv.exited, err = testproc.Start(cmd); err != nil {
		return nil, err
	}

	if err := srv.waitReady(); err != nil {
		srv.kill()
		out := srv.stderr.String()
		if strings.Contains(out, "address already in use") {
			return nil, fmt.Errorf("start versitygw on %s: %w", addr, errPortInUse)
		}
		return nil, fmt.Errorf("start versitygw on %s: %w\n%s", addr, err, testproc.Tail([]byte(out), 2000))
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
		case <-s.exited:
			return fmt.Errorf("exited before it was ready (%v)", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", readyTimeout, lastErr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stop stops the server and removes its data.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.kill()
		os.RemoveAll(s.dir)
	})
}

func (s *Server) kill() {
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Kill()
		<-s.exited
	}
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

func environWithout(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}
