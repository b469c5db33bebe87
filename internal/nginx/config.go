package nginx

import (
	"fmt"
	"strings"
)

// Config says what a Server serves.
type Config struct {
	// Root is the directory served at "/".
	Root string

	// NoETag turns ETags off (`etag off;`): answers carry Last-Modified
	// only, and conditional GETs must use If-Modified-Since.
	NoETag bool

	// IgnoreRange turns byte ranges off (`max_ranges 0;`): a ranged GET
	// gets the whole file, 200, as from a server that ignores Range.
	IgnoreRange bool

	// Cache puts a caching proxy in front of the origin (Server.CacheURL),
	// standing in for a CDN: it caches what the origin's Cache-Control
	// allows (the LTX files and hints for a year, the manifest for a
	// second: see CacheControlBehindCDN) and revalidates with conditional
	// GETs. The origin stays reachable at URL.
	Cache bool

	// TLS serves the origin over https too (Server.TLSURL), with a
	// certificate for 127.0.0.1 signed by a CA of its own (Server.CAFile).
	TLS bool

	// Locations is nginx configuration put in the origin's server block
	// before the standard locations, for what a test needs: a location
	// that answers 403 or redirects, an HTML fallback.
	Locations string
}

// CacheControl is the part of the origin's server block that sets the
// Cache-Control of a replica's files, as the README recommends: LTX files
// and hints never change once written; the manifest changes with every
// commit.
const CacheControl = `
    location ~ /ltx/ltxvfs/manifest$ {
        add_header Cache-Control "public, max-age=1";
    }
` + cacheControlFiles

// CacheControlBehindCDN is CacheControl for an origin behind a CDN: the
// manifest's validators (mtimes in whole seconds) are not offered to the
// CDN, which would otherwise revalidate a manifest rewritten within the
// same second at the same size as unchanged, and keep the older one.
const CacheControlBehindCDN = `
    location ~ /ltx/ltxvfs/manifest$ {
        add_header Cache-Control "public, max-age=1";
        etag off;
        if_modified_since off;
    }
` + cacheControlFiles

const cacheControlFiles = `    location ~ /ltx/ltxvfs/hints/ {
        add_header Cache-Control "public, max-age=31536000, immutable";
    }
    location ~ \.ltx$ {
        add_header Cache-Control "public, max-age=31536000, immutable";
    }
`

// ProbePath answers the readiness probe with the server's token, which
// proves that what answers on the port is this server.
const ProbePath = "/__ltxvfs_nginx"

// ports are the ports of one server's listeners; zero when unused.
type ports struct {
	origin, tls, cache int
}

// logFormat is one access-log line per request, fields separated by tabs
// (see Request).
const logFormat = `'$request_method\t$request_uri\t$status\t$http_range\t$http_if_none_match\t$http_if_modified_since\t$upstream_cache_status\t$body_bytes_sent'`

// render writes the nginx configuration of a server whose files live in
// dir. One process (master_process off) does everything as the user who
// started it, so that it reads its temp directories (a test's, the harness's).
func render(cfg Config, dir, token string, p ports) string {
	var b strings.Builder
	fmt.Fprintf(&b, `daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events {
    worker_connections 1024;
}
http {
    default_type application/octet-stream;
    types {
        text/html html;
    }
    log_format ltxvfs escape=none %[2]s;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    sendfile on;
    keepalive_requests 100000;
`, dir, logFormat)
	if cfg.Cache {
		fmt.Fprintf(&b, "    proxy_cache_path %s/cache levels=1:2 keys_zone=ltxvfs:4m inactive=1h use_temp_path=off;\n", dir)
	}

	fmt.Fprintf(&b, "    server {\n        listen 127.0.0.1:%d;\n", p.origin)
	if cfg.TLS {
		fmt.Fprintf(&b, "        listen 127.0.0.1:%d ssl;\n        ssl_certificate %[2]s/server.pem;\n        ssl_certificate_key %[2]s/server.key;\n", p.tls, dir)
	}
	fmt.Fprintf(&b, "        root %s;\n        access_log %s/origin.log ltxvfs;\n", quote(cfg.Root), dir)
	if cfg.NoETag {
		b.WriteString("        etag off;\n")
	}
	if cfg.IgnoreRange {
		b.WriteString("        max_ranges 0;\n")
	}
	fmt.Fprintf(&b, "        location = %s {\n            return 200 %q;\n        }\n", ProbePath, token)
	b.WriteString(cfg.Locations)
	if cfg.Cache {
		b.WriteString(CacheControlBehindCDN)
	} else {
		b.WriteString(CacheControl)
	}
	b.WriteString("    }\n")

	if cfg.Cache {
		fmt.Fprintf(&b, `    server {
        listen 127.0.0.1:%d;
        access_log %s/cache.log ltxvfs;
        location / {
            proxy_pass http://127.0.0.1:%d;
            proxy_cache ltxvfs;
            proxy_cache_revalidate on;
            proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status;
        }
    }
`, p.cache, dir, p.origin)
	}
	b.WriteString("}\n")
	return b.String()
}

// quote makes a path one nginx token, whatever it holds.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
