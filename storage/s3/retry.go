package s3

import (
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// Backoff bases: a page read waits on every retry, so ordinary failures
// start small; throttling (SlowDown) asks for a real pause.
const (
	retryBaseDelay    = 100 * time.Millisecond
	throttleBaseDelay = time.Second
)

// newRetryer is the SDK's standard retryer, which retries 5xx answers,
// throttling, timeouts and broken or refused connections, and never a
// cancelled context, with exponential backoff and jitter.
//
// The SDK's client-side retry quota is switched off: with a hundred ranged
// reads in flight, one burst of 503s would drain it and fail the reads at
// once instead of retrying them; the backoff already spreads the retries.
func newRetryer(maxAttempts int, maxBackoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxBackoff
		o.Backoff = backoff{max: maxBackoff, throttle: retry.IsErrorThrottles(o.Throttles)}
		o.RateLimiter = ratelimit.None
	})
}

// backoff doubles the delay on every attempt up to max, with "equal jitter":
// half of the delay is fixed and half random, so that concurrent retries
// spread out yet none comes back at once.
type backoff struct {
	max      time.Duration
	throttle retry.IsErrorThrottle
}

func (b backoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	base := retryBaseDelay
	if b.throttle.IsErrorThrottle(err) == aws.TrueTernary {
		base = throttleBaseDelay
	}
	d := b.max
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 20 {
		d = min(base<<(attempt-1), b.max)
	}
	half := d / 2
	return half + rand.N(d-half+1), nil
}
