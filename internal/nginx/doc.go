// Package nginx runs a real nginx on loopback: a static server over a
// directory (the replica a writer makes, read back over HTTP), optionally
// over TLS with a CA of its own, optionally behind a second nginx server
// that caches like a CDN (proxy_cache, honouring the origin's
// Cache-Control). Tests use it through package nginxtest, which installs
// nginx when missing; cmd/ltxvfs-bench -serve-http uses it directly, which
// is why it never imports testing.
//
// Each Server runs its own nginx process (master_process off, daemon off,
// as the current user) with its configuration, logs, pid file and temp
// paths in a temp directory, on random loopback ports. On Linux the kernel
// kills it when the process that started it dies.
package nginx
