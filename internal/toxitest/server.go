package toxitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/testbin"
)

// Version is the Toxiproxy release the tests run against.
const Version = "v2.5.0"

// Tool is Toxiproxy's server. In v2.5.0 its main package is cmd/server
// (binary "server"); distributions install it as toxiproxy-server.
var Tool = testbin.Tool{
	Name:    "toxiproxy-server",
	Env:     "TOXIPROXY_SERVER",
	Package: "github.com/Shopify/toxiproxy/v2/cmd/server",
	Version: Version,
	Built:   "server",
}

const readyTimeout = 20 * time.Second

// Server is a toxiproxy-server process on loopback.
type Server struct {
	// API is the URL of its HTTP API, http://127.0.0.1:PORT.
	API string

	proc   *testbin.Process
	client *http.Client
}

// Start starts a Toxiproxy server for one test, stopped when the test
// ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start()
	if err != nil {
		testbin.Unavailable(tb, "Toxiproxy", err)
		return nil
	}
	tb.Cleanup(s.proc.Kill)
	return s
}

func start() (*Server, error) {
	bin, err := Tool.Path()
	if err != nil {
		return nil, err
	}
	var s *Server
	err = testbin.OnFreePorts(1, func(ports []int) error {
		s, err = startOn(bin, ports[0])
		return err
	})
	return s, err
}

func startOn(bin string, port int) (*Server, error) {
	// A fixed seed: which connections a toxic with a toxicity below 1
	// hits is drawn from it.
	args := []string{"-host", "127.0.0.1", "-port", strconv.Itoa(port), "-seed", "1"}
	// Its log (a line per API call at the default level) is kept in memory
	// for errors: warnings and worse only.
	proc, err := testbin.Start(bin, args, append(testbin.EnvironWithout("LOG_LEVEL="), "LOG_LEVEL=warn"))
	if err != nil {
		return nil, err
	}
	s := &Server{API: "http://127.0.0.1:" + strconv.Itoa(port), proc: proc, client: &http.Client{Timeout: 10 * time.Second}}
	if err := s.waitReady(); err != nil {
		proc.Kill()
		out := proc.Output()
		if strings.Contains(out, "address already in use") {
			return nil, fmt.Errorf("start toxiproxy on port %d: %w", port, testbin.ErrPortInUse)
		}
		return nil, fmt.Errorf("start toxiproxy on port %d: %w\n%s", port, err, testbin.Tail(out, 2000))
	}
	return s, nil
}

// waitReady polls GET /proxies until it answers with an empty set of
// proxies, which also proves that what answers is a new Toxiproxy. (Its
// /version says "git" when built with go install.)
func (s *Server) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for {
		var proxies map[string]any
		lastErr = s.call(context.Background(), http.MethodGet, "/proxies", nil, &proxies)
		if lastErr == nil && proxies != nil && len(proxies) == 0 {
			return nil
		} else if lastErr == nil {
			lastErr = fmt.Errorf("answered %v, want no proxies", proxies)
		}
		select {
		case <-s.proc.Exited():
			return fmt.Errorf("exited before it was ready (%v)", s.proc.State())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", readyTimeout, lastErr)
		}
	}
}

// call sends a request to the API with in as its JSON body (if not nil)
// and decodes the answer into out (if not nil).
func (s *Server) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.API+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("toxiproxy %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("toxiproxy %s %s: decode %q: %w", method, path, b, err)
		}
	}
	return nil
}

var proxySeq atomic.Int64

// Proxy is a TCP proxy to an upstream address, on a loopback port of its
// own.
type Proxy struct {
	s *Server
	// Name is the proxy's name in the API.
	Name string
	// Listen is the address clients connect to, 127.0.0.1:PORT.
	Listen string
	// Upstream is the address it forwards to.
	Upstream string
}

// Proxy creates a proxy to upstream (host:port) on a port Toxiproxy picks.
func (s *Server) Proxy(upstream string) (*Proxy, error) {
	name := fmt.Sprintf("proxy-%d", proxySeq.Add(1))
	var p struct {
		Name     string `json:"name"`
		Listen   string `json:"listen"`
		Upstream string `json:"upstream"`
		Enabled  bool   `json:"enabled"`
	}
	in := map[string]any{"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": true}
	if err := s.call(context.Background(), http.MethodPost, "/proxies", in, &p); err != nil {
		return nil, err
	}
	if strings.HasSuffix(p.Listen, ":0") || p.Listen == "" {
		return nil, fmt.Errorf("toxiproxy created proxy %s listening on %q: no port", name, p.Listen)
	}
	return &Proxy{s: s, Name: p.Name, Listen: p.Listen, Upstream: p.Upstream}, nil
}

// URL is the proxy's address as an http:// URL.
func (p *Proxy) URL() string { return "http://" + p.Listen }

// Add adds a toxic to the proxy. It applies at once to the connections
// open through it and to new ones, until removed.
func (p *Proxy) Add(t Toxic) error {
	if t.Name == "" {
		return fmt.Errorf("toxic %s on %s: no name", t.Type, p.Name)
	}
	return p.s.call(context.Background(), http.MethodPost, "/proxies/"+p.Name+"/toxics", t, nil)
}

// Remove removes a toxic by name.
func (p *Proxy) Remove(name string) error {
	return p.s.call(context.Background(), http.MethodDelete, "/proxies/"+p.Name+"/toxics/"+name, nil, nil)
}

// Toxics are the names of the proxy's toxics.
func (p *Proxy) Toxics() ([]string, error) {
	var ts []Toxic
	if err := p.s.call(context.Background(), http.MethodGet, "/proxies/"+p.Name+"/toxics", nil, &ts); err != nil {
		return nil, err
	}
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return names, nil
}

// SetEnabled takes the proxy down (closing its connections and refusing
// new ones) or brings it back.
func (p *Proxy) SetEnabled(enabled bool) error {
	return p.s.call(context.Background(), http.MethodPost, "/proxies/"+p.Name, map[string]any{"enabled": enabled}, nil)
}
