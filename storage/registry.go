package storage

import (
	"context"
	"fmt"
	"sync"
)

// OpenFunc makes a client for a parsed URL of the scheme it was registered
// for.
type OpenFunc func(ctx context.Context, u *URL) (Client, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]OpenFunc{}
)

// Register makes a backend available to Open for a URL scheme. Backends call
// it from init, so importing a backend package is what enables its scheme.
func Register(scheme string, fn OpenFunc) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[scheme]; dup {
		panic("storage: Register called twice for scheme " + scheme)
	}
	registry[scheme] = fn
}

// Open parses a replica URL and makes a client for it with the backend
// registered for its scheme.
func Open(ctx context.Context, raw string) (Client, error) {
	u, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	registryMu.RLock()
	fn := registry[u.Scheme]
	registryMu.RUnlock()
	if fn == nil {
		pkg := u.Scheme
		if pkg == "https" {
			pkg = "http" // one backend, storage/http, serves both
		}
		return nil, fmt.Errorf("%w %q: no backend for scheme %q is linked in (import github.com/ltxvfs/ltxvfs/storage/%s)", ErrInvalidURL, u, u.Scheme, pkg)
	}
	c, err := fn(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open replica %s: %w", u, err)
	}
	return c, nil
}
