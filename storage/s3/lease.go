package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage"
)

var _ lease.Leaser = (*Client)(nil)

// LeaseObjectName is the object beside the levels, <prefix>/.ltx-writer.lease,
// that carries a replica's writer lease.
const LeaseObjectName = ".ltx-writer.lease"

// leaseSlack is added to a lease's TTL before another writer may take it
// over: HTTP dates, which the expiry is computed from, have one-second
// precision.
const leaseSlack = time.Second

// leaseBody is the lease object's content. The expiry is not in it: it is
// the object's Last-Modified plus TTL, both by the server's clock, and
// compared with the Date of the server's answer, so that writers on
// machines whose clocks disagree still agree on when a lease lapses.
type leaseBody struct {
	Owner    string `json:"owner"`
	TTLMilli int64  `json:"ttl_ms"`
	// Nonce is new for every write of the object: a writer whose request
	// landed though its answer was lost recognizes its own write.
	Nonce    string `json:"nonce"`
	Released bool   `json:"released,omitempty"`
	// Holder identifies the writer, so that one restarted after a crash
	// can take over its predecessor's lease at once (see
	// lease.Holder.Succeeds). Lease objects written before it
	// existed have none, and lapse by their TTL.
	Holder *lease.Holder `json:"holder,omitempty"`
}

// leaseKey is the lease object's key. It never depends on how the server
// treats keys that start with a slash (see objectsUnder): every writer of
// the replica must use the same key, whatever it has seen so far.
func (c *Client) leaseKey() string {
	if c.prefix == "" {
		return LeaseObjectName
	}
	return c.prefix + "/" + LeaseObjectName
}

// AcquireLease takes the replica's lease with S3 conditional writes: the
// lease object is created with If-None-Match: *, so that of two writers
// only one succeeds; a lease that has lapsed (or was released) is taken
// over with If-Match: <its ETag>, so that of two writers taking it over only
// one succeeds; a 412 Precondition Failed means another writer got there.
// An unexpired lease whose holder holder.Succeeds (a writer of the same
// database on this machine whose process has exited) is taken over the
// same way. A server that does not implement conditional writes gets an
// error matching errors.ErrUnsupported.
func (c *Client) AcquireLease(ctx context.Context, holder lease.Holder, ttl time.Duration) (lease.Lease, error) {
	name := c.name(c.leaseKey())
	for attempt := 0; attempt < 5; attempt++ {
		body := newLeaseBody(holder, ttl)
		etag, err := c.putLease(ctx, body, nil)
		if err == nil {
			return c.probedLease(ctx, holder, ttl, etag, nil)
		}
		if !isPreconditionFailed(err) {
			return nil, c.leaseError("take", err)
		}
		// The object exists: whose is it, and is it still held?
		held, err := c.getLease(ctx)
		if errors.Is(err, errNoLease) {
			continue // the object was removed meanwhile (by hand, or a bucket lifecycle rule): try again
		} else if err != nil {
			return nil, c.leaseError("take", err)
		}
		if held.body.Nonce == body.Nonce {
			// Our create landed, and the SDK's retry of it found it:
			// probed and cleaned up after as any lease taken.
			return c.probedLease(ctx, holder, ttl, held.etag, nil)
		}
		var dead *lease.Holder
		if !held.lapsed() {
			if held.body.Holder == nil || !holder.Succeeds(*held.body.Holder) {
				return nil, fmt.Errorf("%w: %s is held by %s (expires %s, by the server's clock)",
					lease.ErrHeld, c, held.body.Owner, held.expires().UTC().Format(time.RFC3339))
			}
			dead = held.body.Holder
		}
		body = newLeaseBody(holder, ttl)
		etag, err = c.putLease(ctx, body, &held.etag)
		if err == nil {
			return c.probedLease(ctx, holder, ttl, etag, dead)
		}
		if !isPreconditionFailed(err) && !isNotFound(err) {
			return nil, c.leaseError("take over", err)
		}
		// Another writer took it over first, or our takeover landed and
		// its retry failed: look again.
		if again, gerr := c.getLease(ctx); gerr == nil && again.body.Nonce == body.Nonce {
			return c.probedLease(ctx, holder, ttl, again.etag, dead)
		}
	}
	return nil, fmt.Errorf("%w: %s: the lease object %s keeps changing hands", lease.ErrHeld, c, name)
}

// spoolPrefix starts the names of the temp files that hold this replica's
// large uploads (see spool): ltxvfs-s3-upload-<hash of the replica>-.
func (c *Client) spoolPrefix() string {
	h := fnv.New64a()
	h.Write([]byte(c.desc))
	return fmt.Sprintf("ltxvfs-s3-upload-%016x-", h.Sum64())
}

// removeStaleSpools removes the temp files of uploads to this replica that
// a writer killed mid-upload left: the lease holder is the replica's only
// writer, and a crash during a snapshot upload would otherwise leak a
// whole database's worth of disk each time.
func (c *Client) removeStaleSpools() {
	stale, _ := filepath.Glob(filepath.Join(os.TempDir(), c.spoolPrefix()+"*.ltx"))
	for _, name := range stale {
		_ = os.Remove(name)
	}
}

// probedLease makes sure that the server honours conditional writes before
// a lease it granted is trusted: a server that ignores If-None-Match would
// grant every writer the lease. Right after this writer wrote the lease
// object, creating it again with If-None-Match: * must fail with a 412.
// dead is the exited holder whose unexpired lease was taken over, if any.
func (c *Client) probedLease(ctx context.Context, holder lease.Holder, ttl time.Duration, etag string, dead *lease.Holder) (lease.Lease, error) {
	l := c.newLease(holder, ttl, etag)
	l.tookOverFrom = dead
	probe := newLeaseBody(holder, ttl)
	_, err := c.putLease(ctx, probe, nil)
	switch {
	case isPreconditionFailed(err):
		c.removeStaleSpools()
		return l, nil
	case err == nil:
		// The probe replaced the lease object: it holds our own lease,
		// which nobody can trust; mark it released.
		l.etag = ""
		if again, gerr := c.getLease(ctx); gerr == nil && again.body.Nonce == probe.Nonce {
			l.etag = again.etag
		}
		_ = l.Release(ctx)
		return nil, fmt.Errorf("lease %s: the server ignores If-None-Match, so it cannot grant an exclusive lease: %w: %w", c.name(c.leaseKey()), storage.ErrNoConditionalWrites, errors.ErrUnsupported)
	default:
		_ = l.Release(ctx)
		return nil, c.leaseError("take", err)
	}
}

func newLeaseBody(holder lease.Holder, ttl time.Duration) leaseBody {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return leaseBody{Owner: holder.Owner, TTLMilli: ttl.Milliseconds(), Nonce: hex.EncodeToString(b), Holder: &holder}
}

// putLease writes the lease object, created only if absent (ifMatch nil)
// or replaced only if it still has the ETag *ifMatch. It returns the new
// ETag.
func (c *Client) putLease(ctx context.Context, body leaseBody, ifMatch *string) (string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(c.bucket),
		Key:           aws.String(c.leaseKey()),
		Body:          bytes.NewReader(b),
		ContentLength: aws.Int64(int64(len(b))),
		ContentType:   aws.String("application/json"),
	}
	if ifMatch != nil {
		in.IfMatch = ifMatch
	} else {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := c.s3.PutObject(ctx, in)
	if err != nil {
		return "", err
	}
	if aws.ToString(out.ETag) == "" {
		return "", fmt.Errorf("%s: the server returned no ETag for the lease object", c.name(c.leaseKey()))
	}
	return aws.ToString(out.ETag), nil
}

// heldLease is the lease object as read.
type heldLease struct {
	body     leaseBody
	etag     string
	modified time.Time // Last-Modified, by the server's clock
	now      time.Time // the Date of the answer, by the server's clock
}

func (h heldLease) expires() time.Time {
	return h.modified.Add(time.Duration(h.body.TTLMilli)*time.Millisecond + leaseSlack)
}

// lapsed reports whether another writer may take the lease over.
func (h heldLease) lapsed() bool { return h.body.Released || !h.now.Before(h.expires()) }

var errNoLease = errors.New("no lease object")

// getLease reads the lease object.
func (c *Client) getLease(ctx context.Context) (heldLease, error) {
	out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(c.leaseKey())})
	if isNotFound(err) {
		return heldLease{}, errNoLease
	} else if err != nil {
		return heldLease{}, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, 64<<10))
	if err != nil {
		return heldLease{}, fmt.Errorf("read %s: %w", c.name(c.leaseKey()), err)
	}
	h := heldLease{etag: aws.ToString(out.ETag), modified: aws.ToTime(out.LastModified)}
	if err := json.Unmarshal(b, &h.body); err != nil || h.body.Nonce == "" {
		// Not a lease this code wrote: treat it as held for its own
		// sake, but say what it is.
		return heldLease{}, fmt.Errorf("%w: %s is not a lease object ltx-writer understands (%d bytes); remove it if no writer runs", lease.ErrHeld, c.name(c.leaseKey()), len(b))
	}
	// The expiry is judged by the server's clock only: this machine's may
	// be off by any amount, and another writer's by another.
	var ok bool
	if h.now, ok = awsmiddleware.GetServerTime(out.ResultMetadata); !ok || h.modified.IsZero() {
		return heldLease{}, fmt.Errorf("read %s: the server's answer has no Date or no Last-Modified, so whether the lease has lapsed cannot be judged by the server's clock", c.name(c.leaseKey()))
	}
	return h, nil
}

// leaseError words a failed lease request; a server without conditional
// writes matches errors.ErrUnsupported.
func (c *Client) leaseError(what string, err error) error {
	if errors.Is(err, lease.ErrHeld) {
		return err
	}
	code, status := errorCode(err)
	if code == "NotImplemented" || status == http.StatusNotImplemented {
		c.noConditions.Store(true)
		return fmt.Errorf("%s lease %s: the server does not implement conditional writes: %w: %w: %w", what, c.name(c.leaseKey()), storage.ErrNoConditionalWrites, errors.ErrUnsupported, err)
	}
	return fmt.Errorf("%s lease %s: %w", what, c.name(c.leaseKey()), classify(err, c.bucket))
}

// isPreconditionFailed reports an If-Match or If-None-Match that did not
// hold (412), or, on AWS, a conditional write that lost a race with
// another (409 ConditionalRequestConflict).
func isPreconditionFailed(err error) bool {
	code, status := errorCode(err)
	return code == "PreconditionFailed" || status == http.StatusPreconditionFailed ||
		code == "ConditionalRequestConflict" || (status == http.StatusConflict && strings.Contains(code, "Conditional"))
}

// s3Lease is a held lease.
type s3Lease struct {
	c            *Client
	holder       lease.Holder
	tookOverFrom *lease.Holder

	mu       sync.Mutex
	etag     string
	expires  time.Time
	released bool
}

func (c *Client) newLease(holder lease.Holder, ttl time.Duration, etag string) *s3Lease {
	// Taken just before the request that made it: by this machine's
	// clock the lease lapses no earlier than this.
	return &s3Lease{c: c, holder: holder, etag: etag, expires: time.Now().Add(ttl)}
}

// Renew replaces the lease object on the condition that it is still the
// one this writer wrote (If-Match: its ETag): if another writer took it
// over, the renewal fails with ErrLeaseHeld.
func (l *s3Lease) Renew(ctx context.Context, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("%w: lease on %s was released", lease.ErrHeld, l.c)
	}
	start := time.Now()
	body := newLeaseBody(l.holder, ttl)
	etag, err := l.c.putLease(ctx, body, &l.etag)
	if err != nil && (isPreconditionFailed(err) || isNotFound(err)) {
		// Lost, unless this very renewal landed and its retry failed.
		held, gerr := l.c.getLease(ctx)
		if gerr == nil && held.body.Nonce == body.Nonce {
			etag, err = held.etag, nil
		} else if gerr == nil || errors.Is(gerr, errNoLease) {
			owner := "nobody: the lease object was deleted"
			if gerr == nil {
				owner = held.body.Owner
			}
			return fmt.Errorf("%w: lost the lease on %s to %s", lease.ErrHeld, l.c, owner)
		}
	}
	if err != nil {
		return l.c.leaseError("renew", err)
	}
	l.etag, l.expires = etag, start.Add(ttl)
	return nil
}

func (l *s3Lease) TookOverFrom() *lease.Holder { return l.tookOverFrom }

func (l *s3Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Release marks the lease released, with a conditional write (If-Match:
// its ETag) rather than a delete: versitygw evaluates a DeleteObject's
// If-Match outside the lock that orders conditional writes, so a
// conditional delete could remove a lease another writer had just taken
// over. A released lease is free to take at once. Releasing a lease that
// was lost already is not an error.
func (l *s3Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	l.released = true
	body := newLeaseBody(l.holder, 0)
	body.Released = true
	_, err := l.c.putLease(ctx, body, &l.etag)
	if err == nil || isPreconditionFailed(err) || isNotFound(err) {
		return nil
	}
	return l.c.leaseError("release", err)
}
