package toxitest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// body is what the upstream serves: large enough to be cut mid-way.
var body = bytes.Repeat([]byte("0123456789abcdef"), 16<<10)

func upstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Host", r.Host)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// get fetches url on a fresh connection within d. The connection is kept
// alive, as an S3 client's is: the server does not close it after the
// answer.
func get(url string, d time.Duration) ([]byte, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp, err
}

func TestToxics(t *testing.T) {
	srv := Start(t)
	up := upstream(t)
	p, err := srv.Proxy(strings.TrimPrefix(up.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, wantErr func(error) bool) {
		t.Helper()
		d := 2 * time.Second
		if wantErr != nil {
			d = 300 * time.Millisecond // how long a stall is waited out
		}
		b, _, err := get(p.URL(), d)
		if wantErr == nil {
			if err != nil || !bytes.Equal(b, body) {
				t.Fatalf("%s: read %d bytes, %v; want the whole body", what, len(b), err)
			}
			return
		}
		if !wantErr(err) {
			t.Fatalf("%s: read %d bytes, error %v", what, len(b), err)
		}
	}
	check("no toxic", nil)

	steps := []struct {
		toxic   Toxic
		wantErr func(error) bool
	}{
		{LimitData("cut", Downstream, 10_000), func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{Timeout("stall", Downstream, 0), func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{ResetPeer("reset", Downstream, 0), func(err error) bool {
			return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		}},
		{Timeout("half-open", Upstream, 0), func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
	}
	for _, s := range steps {
		if err := p.Add(s.toxic); err != nil {
			t.Fatal(err)
		}
		check(s.toxic.Name, s.wantErr)
		if err := p.Remove(s.toxic.Name); err != nil {
			t.Fatal(err)
		}
		check("after "+s.toxic.Name, nil)
	}

	// Toxics that slow rather than break: the body arrives whole, late.
	for _, tx := range []Toxic{Latency("latency", Downstream, 300*time.Millisecond, 50*time.Millisecond), Bandwidth("bandwidth", Downstream, 512), SlowClose("slow-close", Downstream, 100*time.Millisecond)} {
		if err := p.Add(tx); err != nil {
			t.Fatal(err)
		}
	}
	names, err := p.Toxics()
	if err != nil || len(names) != 3 {
		t.Fatalf("toxics %v, %v; want the three added", names, err)
	}
	start := time.Now()
	check("latency and bandwidth", nil)
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Fatalf("a 256 KiB body through 300 ms of latency and 512 KB/s took %v: the toxics did not apply", took)
	}
	if err := p.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(p.URL(), time.Second); err == nil {
		t.Fatal("a disabled proxy still answered")
	}
	if err := p.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(Toxic{Type: "latency"}); err == nil {
		t.Fatal("a toxic without a name was accepted")
	}
	if err := p.Add(Toxic{Name: "bogus", Type: "no-such-toxic"}); err == nil || !strings.Contains(err.Error(), "toxiproxy POST") {
		t.Fatalf("an unknown toxic type: %v, want Toxiproxy's refusal", err)
	}
}

func TestThrottle(t *testing.T) {
	up := upstream(t)
	th := NewThrottle(t, up.URL, 1)
	url := "http://" + th.Addr + "/bucket/key"
	b, resp, err := get(url, 2*time.Second)
	if err != nil || !bytes.Equal(b, body) {
		t.Fatalf("between bursts: %d bytes, %v", len(b), err)
	}
	if got := resp.Header.Get("X-Seen-Host"); got != th.Addr {
		t.Fatalf("the server saw Host %q, want the throttle's %q that the client signed", got, th.Addr)
	}
	th.Burst(time.Minute, 1)
	b, resp, err = get(url, 2*time.Second)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(b, []byte("<Code>SlowDown</Code>")) {
		t.Fatalf("during a burst: %v %q, %v; want 503 SlowDown", resp.Status, b, err)
	}
	th.Calm()
	if b, _, err := get(url, 2*time.Second); err != nil || !bytes.Equal(b, body) {
		t.Fatalf("after the burst: %d bytes, %v", len(b), err)
	}
	if th.SlowDowns() != 1 || th.Forwarded() != 2 {
		t.Fatalf("counted %d SlowDowns and %d forwarded, want 1 and 2", th.SlowDowns(), th.Forwarded())
	}
}
