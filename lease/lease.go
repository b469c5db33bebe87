package lease

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/ltxvfs/ltxvfs/storage"
)

// ErrHeld is wrapped by the error of AcquireLease when another writer
// holds the replica's lease; the message names the holder.
var ErrHeld = errors.New("replica is leased by another writer")

// Leaser is an optional capability of a storage.Client: an exclusive lease on the
// replica, so that two writers never write the same replica. A writer takes
// the lease before its first write, renews it while it runs and releases it
// when it stops; a writer that dies loses the lease when it expires (or, on
// backends that can tell, as soon as it is gone).
//
// Backends that cannot grant a lease do not implement Leaser; a backend that
// implements it but cannot grant one on this system returns an error that
// matches errors.ErrUnsupported.
type Leaser interface {
	// AcquireLease takes the lease for holder for ttl. If another writer
	// holds an unexpired lease it fails with an error wrapping
	// ErrHeld, unless holder.Succeeds that writer: then the lease is
	// taken over at once, as a lapsed one is.
	AcquireLease(ctx context.Context, holder Holder, ttl time.Duration) (Lease, error)
}

// Lease is a held lease.
type Lease interface {
	// Renew extends the lease by ttl from now. It fails with an error
	// wrapping ErrHeld if the lease was lost to another writer.
	Renew(ctx context.Context, ttl time.Duration) error
	// Expires is when the lease lapses unless renewed.
	Expires() time.Time
	// Release gives the lease up.
	Release(ctx context.Context) error
	// TookOverFrom is the holder of the unexpired lease that this one
	// replaced because it had provably exited (see Holder.Succeeds),
	// or nil.
	TookOverFrom() *Holder
}

// Holder describes the writer that holds a lease: Owner is what
// messages call it; the other fields let a writer restarted after a crash
// prove that an unexpired lease is its own predecessor's, so that it need
// not wait for the lease to lapse (see Succeeds). Backends that keep the
// holder in storage store these fields with the lease.
type Holder struct {
	Owner string `json:"-"`
	// Path is the absolute path of the database the writer replicates.
	Path string `json:"path"`
	Host string `json:"host,omitempty"`
	PID  int    `json:"pid,omitempty"`
	// BootID names the kernel boot the writer ran in (Linux:
	// /proc/sys/kernel/random/boot_id); empty where it cannot be read.
	BootID string `json:"boot_id,omitempty"`
	// PIDNamespace names the PID namespace PID belongs to (Linux: the
	// link /proc/self/ns/pid, e.g. "pid:[4026531836]"); empty where it
	// cannot be read.
	PIDNamespace string `json:"pid_ns,omitempty"`
}

// ThisProcess describes this process as the writer of the database at
// path (an absolute path), called owner in messages.
func ThisProcess(owner, path string) Holder {
	host, _ := os.Hostname()
	return Holder{
		Owner:        owner,
		Path:         path,
		Host:         host,
		PID:          os.Getpid(),
		BootID:       bootID(),
		PIDNamespace: pidNamespace(),
	}
}

// Succeeds reports whether h, a description of this process (see
// ThisProcess), may take over the unexpired lease of held at once: held
// must provably be a writer of the same database that ran in this kernel
// boot and PID namespace, and whose process no longer exists. A hostname
// proves nothing (containers share them, and PIDs are per namespace), so
// where the boot or the namespace cannot be read, nothing is proven and
// the lease is left to lapse. A PID that exists, or that is reused by
// another process meanwhile, counts as alive; so does this very process.
func (h Holder) Succeeds(held Holder) bool {
	return h.PID == os.Getpid() &&
		h.Path != "" && held.Path == h.Path &&
		h.BootID != "" && held.BootID == h.BootID &&
		h.PIDNamespace != "" && held.PIDNamespace == h.PIDNamespace &&
		held.PID > 0 && held.PID != h.PID && processGone(held.PID)
}

// Find returns the Leaser of c or of a client c wraps (a wrapper
// exposes the client it wraps with an Unwrap() storage.Client method), or nil.
func Find(c storage.Client) Leaser {
	for c != nil {
		if l, ok := c.(Leaser); ok {
			return l
		}
		u, ok := c.(storage.Wrapper)
		if !ok {
			return nil
		}
		c = u.Unwrap()
	}
	return nil
}
