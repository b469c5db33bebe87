package nginx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/proc"
)

const (
	readyTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
	portAttempts = 5
)

// Server is an nginx process serving a directory on loopback.
type Server struct {
	// URL is the origin's base URL, http://127.0.0.1:PORT.
	URL string
	// TLSURL is the origin's https://127.0.0.1:PORT when Config.TLS.
	TLSURL string
	// CAFile is the PEM of the CA that signed the TLS certificate.
	CAFile string
	// CacheURL is the caching proxy's http://127.0.0.1:PORT when
	// Config.Cache.
	CacheURL string

	dir  string
	proc *proc.Process

	stopOnce sync.Once
}

// Start starts the nginx binary bin (see Find) with cfg; Stop stops it.
// Its configuration, logs and temp paths live in a directory of its own
// (Dir), removed by Stop.
func Start(bin string, cfg Config) (*Server, error) {
	if cfg.Root == "" {
		return nil, errors.New("start nginx: Config.Root is empty")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	cfg.Root = root
	for attempt := 1; ; attempt++ {
		srv, err := startOn(bin, cfg)
		if err == nil {
			return srv, nil
		}
		// Another process may take a free port between our probe and
		// nginx's bind.
		if !errors.Is(err, errPortInUse) || attempt == portAttempts {
			return nil, err
		}
	}
}

var errPortInUse = errors.New("port in use")

func startOn(bin string, cfg Config) (*Server, error) {
	dir, err := os.MkdirTemp("", "ltxvfs-nginx-*")
	if err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	srv, err := launch(bin, cfg, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return srv, nil
}

func launch(bin string, cfg Config, dir string) (*Server, error) {
	var p ports
	var err error
	if p.origin, err = proc.FreePort(); err != nil {
		return nil, fmt.Errorf("start nginx: find a free port: %w", err)
	}
	srv := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(p.origin), dir: dir}
	if cfg.TLS {
		if p.tls, err = proc.FreePort(); err != nil {
			return nil, fmt.Errorf("start nginx: find a free port: %w", err)
		}
		if err := writeCertificates(dir); err != nil {
			return nil, fmt.Errorf("start nginx: %w", err)
		}
		srv.TLSURL = "https://127.0.0.1:" + strconv.Itoa(p.tls)
		srv.CAFile = filepath.Join(dir, "ca.pem")
	}
	if cfg.Cache {
		if p.cache, err = proc.FreePort(); err != nil {
			return nil, fmt.Errorf("start nginx: find a free port: %w", err)
		}
		srv.CacheURL = "http://127.0.0.1:" + strconv.Itoa(p.cache)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	token := randomToken()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(render(cfg, dir, token, p)), 0o600); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}

	// -e: nginx opens its compiled-in error log (under /var/log) before it
	// reads the configuration, unless told another.
	if srv.proc, err = proc.Start(bin, []string{"-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")}, os.Environ()); err != nil {
		return nil, err
	}
	if err := srv.waitReady(token); err != nil {
		srv.kill()
		out := srv.proc.Output() + srv.errorLog()
		if strings.Contains(out, "Address already in use") {
			return nil, fmt.Errorf("start nginx on port %d: %w", p.origin, errPortInUse)
		}
		return nil, fmt.Errorf("start nginx (%s): %w\n%s", conf, err, proc.Tail(out, 2000))
	}
	return srv, nil
}

func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// waitReady polls every listener until it answers the probe with the
// token, which proves that the answer comes from this server.
func (s *Server) waitReady(token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Transport: s.Transport()}
	defer client.CloseIdleConnections()
	for _, base := range []string{s.URL, s.TLSURL, s.CacheURL} {
		if base == "" {
			continue
		}
		var lastErr error
		for {
			body, err := get(ctx, client, base+ProbePath)
			if err == nil && body == token {
				break
			}
			if err == nil {
				err = fmt.Errorf("the probe of %s answered %q, not this server's token", base, body)
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
	return nil
}

func get(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	return string(b), err
}

// Transport is an HTTP transport that trusts the server's CA.
func (s *Server) Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.CAFile != "" {
		tr.TLSClientConfig = tlsConfig(s.CAFile)
	}
	return tr
}

// Stop stops nginx and removes its directory (not the one it served).
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.proc.Signal(syscall.SIGTERM) // fast shutdown
		select {
		case <-s.proc.Exited():
		case <-time.After(stopTimeout):
			s.kill()
		}
		os.RemoveAll(s.dir)
	})
}

func (s *Server) kill() {
	select {
	case <-s.proc.Exited():
	default:
		s.proc.Kill()
	}
}

// Dir is the server's own directory: its configuration, access logs
// (origin.log, cache.log) and error log.
func (s *Server) Dir() string { return s.dir }

func (s *Server) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
	return string(b)
}
