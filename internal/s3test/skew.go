package s3test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SkewProxy is a reverse proxy on loopback in front of a server that makes
// the server's clock look Offset ahead of this machine's (behind, when
// negative) to the clients that go through it, as a storage server whose
// clock is wrong would: the Date and Last-Modified headers of its answers
// are shifted by Offset.
//
// A real server that far off would also judge request signatures by its own
// clock, and the SDK, which learns the server's clock from the Date of
// each answer, signs by it (its clock skew correction): requests signed an
// hour away from the real server's clock would be refused. So the proxy
// signs every request again, at this machine's time, with the server's
// credentials, as the server whose clock is shifted would have accepted it.
type SkewProxy struct {
	// Endpoint is the proxy's URL, http://127.0.0.1:PORT.
	Endpoint string
	Offset   time.Duration
}

// StartSkewProxy starts a SkewProxy in front of srv for the rest of the
// test.
func (s *Server) StartSkewProxy(tb testing.TB, offset time.Duration) *SkewProxy {
	tb.Helper()
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		tb.Fatal(err)
	}
	creds, err := s.Credentials().Retrieve(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			out := pr.Out
			hash := out.Header.Get("X-Amz-Content-Sha256")
			if hash == "" {
				hash = "UNSIGNED-PAYLOAD"
				out.Header.Set("X-Amz-Content-Sha256", hash)
			}
			out.Header.Del("Authorization")
			out.Header.Del("X-Amz-Date")
			out.Header.Del("X-Amz-Security-Token")
			if err := signer.SignHTTP(out.Context(), creds, out, hash, "s3", Region, time.Now()); err != nil {
				// An unsigned request is refused by the server: the
				// test sees it.
				tb.Errorf("skew proxy: sign %s %s: %v", out.Method, out.URL, err)
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			for _, h := range []string{"Date", "Last-Modified"} {
				if t, err := http.ParseTime(resp.Header.Get(h)); err == nil {
					resp.Header.Set(h, t.Add(offset).UTC().Format(http.TimeFormat))
				}
			}
			return nil
		},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hs := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("skew proxy: %v", err)
		}
	}()
	tb.Cleanup(func() {
		hs.Close()
		<-done
	})
	return &SkewProxy{Endpoint: "http://" + l.Addr().String(), Offset: offset}
}
