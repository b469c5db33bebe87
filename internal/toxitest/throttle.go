package toxitest

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Throttle is an HTTP reverse proxy to an S3 server that, during a burst,
// answers a share of the requests itself with 503 SlowDown, as S3 does
// when a prefix takes more requests than it can serve. Between bursts it
// forwards everything untouched, the Host header included, so that
// signatures made for the address the client dialled still hold.
type Throttle struct {
	// Addr is its loopback address, 127.0.0.1:PORT.
	Addr string

	srv *http.Server
	rp  *httputil.ReverseProxy

	mu    sync.Mutex
	until time.Time
	share float64
	rng   *rand.Rand

	slowDowns, forwarded atomic.Int64
}

// NewThrottle starts a throttle in front of the server at upstream (an
// http:// URL), stopped when the test ends. seed draws which requests of a
// burst are refused.
func NewThrottle(tb testing.TB, upstream string, seed uint64) *Throttle {
	tb.Helper()
	target, err := url.Parse(upstream)
	if err != nil || target.Host == "" {
		tb.Fatalf("throttle: upstream %q is not a URL", upstream)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("throttle: %v", err)
	}
	t := &Throttle{Addr: l.Addr().String(), rng: rand.New(rand.NewPCG(seed, 503))}
	t.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // signed by the client
		},
		FlushInterval: -1,
		// A client that went away mid-request is what the faults are
		// for: not worth a log line each.
		ErrorLog:  log.New(io.Discard, "", 0),
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	}
	t.srv = &http.Server{Handler: t, ErrorLog: log.New(io.Discard, "", 0)}
	go func() {
		if err := t.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("throttle on %s: %v", t.Addr, err)
		}
	}()
	tb.Cleanup(func() { t.srv.Close() })
	return t
}

// Burst refuses share (0..1) of the requests with 503 SlowDown for d from
// now.
func (t *Throttle) Burst(d time.Duration, share float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.until, t.share = time.Now().Add(d), share
}

// Calm ends a burst at once.
func (t *Throttle) Calm() { t.Burst(0, 0) }

// SlowDowns is how many requests were answered 503 SlowDown so far.
func (t *Throttle) SlowDowns() int64 { return t.slowDowns.Load() }

// Forwarded is how many requests were passed on to the server so far.
func (t *Throttle) Forwarded() int64 { return t.forwarded.Load() }

func (t *Throttle) refuse() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return time.Now().Before(t.until) && t.rng.Float64() < t.share
}

// slowDownBody is S3's answer to too many requests.
const slowDownBody = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><Resource>%s</Resource><RequestId>ltxvfs-throttle-%d</RequestId></Error>`

func (t *Throttle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !t.refuse() {
		t.forwarded.Add(1)
		t.rp.ServeHTTP(w, r)
		return
	}
	n := t.slowDowns.Add(1)
	body := fmt.Sprintf(slowDownBody, r.URL.Path, n)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusServiceUnavailable)
	if r.Method != http.MethodHead {
		io.WriteString(w, body)
	}
}
