package reliability

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/internal/toxitest"
	"github.com/ltxvfs/ltxvfs/storage"
	ltxs3 "github.com/ltxvfs/ltxvfs/storage/s3"
)

// The network fault tests (network_writer_test.go, network_reader_test.go)
// put real faults between the project and a real S3 server:
//
//	client -> Toxiproxy -> Throttle (503 SlowDown) -> versitygw
//
// and inject them by kind, one after another, each for
// -network-fault-duration, while a writer or readers work through them.

// netFault is one kind of network fault: toxics on the proxy, or a share
// of requests refused with 503 SlowDown.
type netFault struct {
	name     string
	toxics   func(seed uint64) []toxitest.Toxic
	slowDown float64
	// blocks: every request fails or hangs while it lasts, so that a
	// writer must fall behind and say so. It lasts twice as long as the
	// others: longer than a client's whole retry budget (clientAttempts
	// of responseTimeout each).
	blocks bool
}

func toxics(ts ...toxitest.Toxic) func(uint64) []toxitest.Toxic {
	return func(uint64) []toxitest.Toxic { return ts }
}

// netFaults are the faults, in the order they are injected.
var netFaults = []netFault{
	{name: "latency spike", toxics: toxics(toxitest.Latency("latency", toxitest.Downstream, 400*time.Millisecond, 300*time.Millisecond))},
	{name: "bandwidth collapse", toxics: toxics(
		toxitest.Bandwidth("bw-down", toxitest.Downstream, 8),
		toxitest.Bandwidth("bw-up", toxitest.Upstream, 8))},
	// Reset (RST, unsent data dropped) as the answer starts, on a share
	// of the connections, old and new.
	{name: "connection resets", toxics: toxics(toxitest.ResetPeer("reset", toxitest.Downstream, 0).WithToxicity(0.4))},
	// Answers cut after a few KiB: bodies end mid-way, with a clean close.
	{name: "bodies cut mid-way", toxics: func(seed uint64) []toxitest.Toxic {
		return []toxitest.Toxic{toxitest.LimitData("cut", toxitest.Downstream, int64(2000+seed%30000)).WithToxicity(0.5)}
	}},
	// Nothing comes back, the connections stay open: longer than the
	// clients' response timeout.
	{name: "stall", blocks: true, toxics: toxics(toxitest.Timeout("stall", toxitest.Downstream, 0))},
	// Requests vanish on the way while the connection looks alive, and
	// closes reach the other end late.
	{name: "half-open connections", blocks: true, toxics: toxics(
		toxitest.Timeout("half-open", toxitest.Upstream, 0),
		toxitest.SlowClose("slow-close", toxitest.Downstream, 2*time.Second))},
	{name: "503 SlowDown burst", slowDown: 0.8},
}

// netChain is the path from clients to the shared S3 server through
// Toxiproxy and a throttle, and a bucket on it.
type netChain struct {
	srv      *s3test.Server
	proxy    *toxitest.Proxy
	throttle *toxitest.Throttle
	bucket   string
}

func newNetChain(t *testing.T, seed uint64) *netChain {
	t.Helper()
	srv := s3test.Shared(t)
	tox := toxitest.Start(t)
	th := toxitest.NewThrottle(t, srv.Endpoint, seed)
	p, err := tox.Proxy(th.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return &netChain{srv: srv, proxy: p, throttle: th, bucket: srv.NewBucket(t)}
}

// responseTimeout is the clients' bound on waiting for an answer's headers
// here (the default, 30 s, is longer than a test): a stall outlasts it.
const responseTimeout = 500 * time.Millisecond

// clientAttempts bounds the attempts of one request (the default is 5).
const clientAttempts = 3

// duration is how long a fault lasts.
func (f netFault) duration() time.Duration {
	if f.blocks {
		return 2 * *networkFaultDuration
	}
	return *networkFaultDuration
}

// client opens the replica at prefix, through the faults or straight to
// the server.
func (c *netChain) client(t *testing.T, prefix string, faulty bool) *ltxs3.Client {
	t.Helper()
	endpoint := c.srv.Endpoint
	if faulty {
		endpoint = c.proxy.URL()
	}
	u, err := storage.ParseURL(c.srv.URL(c.bucket, prefix))
	if err != nil {
		t.Fatal(err)
	}
	u.Endpoint = endpoint
	httpClient := ltxs3.NewHTTPClient().WithTransportOptions(func(tr *http.Transport) {
		tr.ResponseHeaderTimeout = responseTimeout
	}).WithDialerOptions(func(d *net.Dialer) { d.Timeout = time.Second })
	client, err := ltxs3.New(context.Background(), u, ltxs3.Options{
		Credentials: c.srv.Credentials(),
		HTTPClient:  httpClient,
		MaxAttempts: clientAttempts,
		MaxBackoff:  200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// inject starts a fault; the returned function ends it.
func (c *netChain) inject(f netFault, seed uint64) (func() error, error) {
	var added []string
	if f.toxics != nil {
		for _, tx := range f.toxics(seed) {
			if err := c.proxy.Add(tx); err != nil {
				return nil, fmt.Errorf("inject %s: %w", f.name, err)
			}
			added = append(added, tx.Name)
		}
	}
	if f.slowDown > 0 {
		c.throttle.Burst(time.Hour, f.slowDown) // until ended
	}
	return func() error {
		c.throttle.Calm()
		for _, name := range added {
			if err := c.proxy.Remove(name); err != nil {
				return fmt.Errorf("end %s: %w", f.name, err)
			}
		}
		return nil
	}, nil
}

// netCause names what a network fault does to a request, as errors say
// it; an error that carries none of them (nor a context's end) does not
// say why it failed.
var netCause = []string{
	"connection reset", "unexpected EOF", "EOF", "broken pipe", "SlowDown", "503",
	"timeout", "Timeout", "deadline exceeded", "context canceled", "interrupted",
	"connection refused", "retry quota", "max attempts",
}

// namedError reports whether a failed read or sync says why: its storage
// or network cause, or the end of its context, and not SQLite's verdict
// on bytes it was given ("malformed", "not a database"), which would mean
// damaged bytes reached SQLite, one step from wrong rows.
func namedError(err error) bool {
	msg := err.Error()
	for _, bad := range []string{"malformed", "not a database", "corrupt"} {
		if strings.Contains(msg, bad) {
			return false
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, sqlite3.INTERRUPT) {
		return true
	}
	for _, cause := range netCause {
		if strings.Contains(msg, cause) {
			return true
		}
	}
	return false
}

// warnLog is a slog handler that counts the warnings and errors logged,
// by message and error, for the report.
type warnLog struct {
	kinds *errorKinds
	attrs []slog.Attr
}

func newWarnLog(kinds *errorKinds) *slog.Logger { return slog.New(&warnLog{kinds: kinds}) }

func (h *warnLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *warnLog) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" || a.Key == "err" {
			msg += ": " + a.Value.String()
		}
		return true
	})
	h.kinds.add(errors.New(msg))
	return nil
}

func (h *warnLog) WithAttrs(as []slog.Attr) slog.Handler { return h }
func (h *warnLog) WithGroup(string) slog.Handler         { return h }

// faultTally counts what happened during each kind of fault.
type faultTally struct {
	mu sync.Mutex
	m  map[string]*faultOutcome
}

type faultOutcome struct {
	injected       int           // windows of this fault
	ok, named      int           // reads that returned checked rows, or failed saying why
	unclear, wrong int           // reads that failed without a cause, or returned wrong rows
	late, hangs    int           // reads that returned after their context ended: a while, or long
	maxLag         time.Duration // the writer's reported lag, at most
	maxTrueLag     time.Duration // how long the replica's TXID stood still while the source changed
	syncErrors     int
	catchUp        time.Duration // from the fault's end to the writer's lag back at zero
	slowDowns      int64
}

func (f *faultTally) get(kind string) *faultOutcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*faultOutcome{}
	}
	o := f.m[kind]
	if o == nil {
		o = &faultOutcome{}
		f.m[kind] = o
	}
	return o
}

func (f *faultTally) update(kind string, fn func(o *faultOutcome)) {
	o := f.get(kind)
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(o)
}
