package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ltxvfs/ltxvfs/internal/nginx"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
)

// serveHTTP starts nginx (-serve-http) on a loopback port, serving the
// replica's directory with the Cache-Control the README recommends, and
// returns the readers' client of it. A replica that is not a directory
// (-replica s3://...) gets a mirror directory in the work directory, which
// the writer fills through a tee (see tee), and nginx serves that.
func (b *bench) serveHTTP(ctx context.Context, res *Result) (storage.Client, error) {
	bin, err := nginx.Find()
	if err != nil {
		return nil, fmt.Errorf("-serve-http: %w (install it: apt-get install nginx-light)", err)
	}
	root := b.replicaDir
	if root == "" {
		root = filepath.Join(b.work, "http-replica")
		b.wclient = &tee{Client: b.backend, mirror: file.New(root), spool: b.work}
	}
	b.nginx, err = nginx.Start(bin, nginx.Config{Root: root})
	if err != nil {
		return nil, fmt.Errorf("-serve-http: %w", err)
	}
	c, err := storage.Open(ctx, b.nginx.URL)
	if err != nil {
		return nil, fmt.Errorf("-serve-http: open %s: %w", b.nginx.URL, err)
	}
	res.Setup.HTTPServer = fmt.Sprintf("%s at %s", nginxVersion(ctx, bin), b.nginx.URL)
	return c, nil
}

// nginxVersion is what `nginx -v` says ("nginx/1.22.1"), or "nginx".
func nginxVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "-v").CombinedOutput()
	if v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "nginx version: "); err == nil && ok {
		return v
	}
	return "nginx"
}
