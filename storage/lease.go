package storage

import (
	"context"
	"errors"
	"time"
)

// ErrLeaseHeld is wrapped by the error of AcquireLease when another writer
// holds the replica's lease; the message names the holder.
var ErrLeaseHeld = errors.New("replica is leased by another writer")

// Leaser is an optional capability of a Client: an exclusive lease on the
// replica, so that two writers never write the same replica. A writer takes
// the lease before its first write, renews it while it runs and releases it
// when it stops; a writer that dies loses the lease when it expires (or, on
// backends that can tell, as soon as it is gone).
//
// Backends that cannot grant a lease do not implement Leaser; a backend that
// implements it but cannot grant one on this system returns an error that
// matches errors.ErrUnsupported.
type Leaser interface {
	// AcquireLease takes the lease for owner (a description of the writer,
	// for messages) for ttl. If another writer holds an unexpired lease it
	// fails with an error wrapping ErrLeaseHeld.
	AcquireLease(ctx context.Context, owner string, ttl time.Duration) (Lease, error)
}

// Lease is a held lease.
type Lease interface {
	// Renew extends the lease by ttl from now. It fails with an error
	// wrapping ErrLeaseHeld if the lease was lost to another writer.
	Renew(ctx context.Context, ttl time.Duration) error
	// Expires is when the lease lapses unless renewed.
	Expires() time.Time
	// Release gives the lease up.
	Release(ctx context.Context) error
}

// FindLeaser returns the Leaser of c or of a client c wraps (a wrapper
// exposes the client it wraps with an Unwrap() Client method), or nil.
func FindLeaser(c Client) Leaser {
	for c != nil {
		if l, ok := c.(Leaser); ok {
			return l
		}
		u, ok := c.(interface{ Unwrap() Client })
		if !ok {
			return nil
		}
		c = u.Unwrap()
	}
	return nil
}
