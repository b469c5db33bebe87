// Command ltxvfs-bench measures the ltx VFS against object storage: open,
// point lookups, scans, time travel, follower lag and page-fetch latency,
// with injected latency or against a real S3 URL.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "ltxvfs-bench: not implemented yet (see the performance issue)")
	os.Exit(1)
}
