// Package nginxtest runs a real nginx on loopback for tests (see package
// nginx, which does the running): a static server over a directory (the
// replica a writer makes, read back over HTTP), optionally over TLS with a
// CA of its own, optionally behind a second nginx server that caches like a
// CDN (proxy_cache, honouring the origin's Cache-Control).
//
// nginx is found as $NGINX, as nginx on PATH or as /usr/sbin/nginx, and
// installed with apt-get (nginx-light, else nginx) when missing; test
// processes take turns with a file lock. Each Server runs its own nginx
// process (master_process off, daemon off, as the current user) with its
// configuration, logs, pid file and temp paths in a temp directory, on
// random loopback ports, and is stopped when its test ends. When nginx
// cannot be installed or started the test is skipped, unless CI is set,
// where it fails: nothing may be skipped in CI.
package nginxtest
