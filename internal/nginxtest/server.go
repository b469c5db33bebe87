package nginxtest

import (
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/nginx"
	"github.com/ltxvfs/ltxvfs/internal/testbin"
)

// Config says what a Server serves (see nginx.Config).
type Config = nginx.Config

// The Cache-Control the README recommends (see package nginx).
const (
	CacheControl          = nginx.CacheControl
	CacheControlBehindCDN = nginx.CacheControlBehindCDN
)

// Server is an nginx process serving a directory on loopback, for one
// test.
type Server struct {
	*nginx.Server
}

// Start starts nginx for one test, stopped when the test ends. It skips the
// test (or fails it in CI) when nginx cannot be installed or started.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	bin, err := Binary()
	if err == nil {
		var srv *nginx.Server
		if srv, err = nginx.Start(bin, cfg); err == nil {
			tb.Cleanup(srv.Stop)
			return &Server{srv}
		}
	}
	testbin.Unavailable(tb, "nginx", err)
	return nil
}
