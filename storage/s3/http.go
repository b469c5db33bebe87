package s3

import (
	"net"
	"net/http"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// MaxConnsPerHost bounds the connections to one endpoint. A reader answers
// SQLite's page reads with many small ranged GETs at once; below this many
// in flight, each gets a connection of its own, kept alive for the next.
const MaxConnsPerHost = 128

// NewHTTPClient returns the HTTP client a Client uses unless Options gives
// one: a connection pool sized for MaxConnsPerHost requests in flight, with
// bounds on each step that can hang (dial, TLS handshake, waiting for the
// response headers). It is an awshttp.BuildableClient, not a plain
// *http.Client, so that the SDK can apply AWS_CA_BUNDLE to it.
//
// No overall request timeout is set: a large upload or download may take
// long, and the caller's context bounds it.
func NewHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = 5 * time.Second
			d.KeepAlive = 30 * time.Second
		}).
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 2 * MaxConnsPerHost
			tr.MaxIdleConnsPerHost = MaxConnsPerHost
			tr.MaxConnsPerHost = MaxConnsPerHost
			tr.IdleConnTimeout = 90 * time.Second
			tr.TLSHandshakeTimeout = 10 * time.Second
			tr.ResponseHeaderTimeout = 30 * time.Second
			tr.ExpectContinueTimeout = time.Second
		})
}
