package reliability

import (
	"flag"
	"os"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/ltxvfs/ltxvfs/internal/childwriter"
	"github.com/ltxvfs/ltxvfs/internal/s3test"

	_ "github.com/ltxvfs/ltxvfs/storage/file"
	_ "github.com/ltxvfs/ltxvfs/vfs"
)

// The long modes, wired into nothing by default:
//
//	go test -race ./internal/reliability -run CrashLoop -crash-iterations=500 -timeout=2h
//	go test -race ./internal/reliability -run Follow -follow-duration=5m
//	go test -race ./internal/reliability -run Fault -fault-duration=5m
//	go test -race ./internal/reliability -run Network -network-fault-duration=30s
//	go test ./internal/reliability -run LongFollow -long-follow=30m -timeout=2h
//
// -reliability-seed replays a run whose seed a failure logged.
var (
	crashIterations = flag.Int("crash-iterations", 10, "writer processes killed with SIGKILL in TestCrashLoop")
	followDuration  = flag.Duration("follow-duration", 5*time.Second, "how long the bank-transfer load runs in TestFollowConsistency")
	faultDuration   = flag.Duration("fault-duration", 3*time.Second, "how long readers and the writer run under faults in the fault tests")
	seedFlag        = flag.Uint64("reliability-seed", 0, "seed of the random choices (0: from the clock, logged)")

	networkFaultDuration = flag.Duration("network-fault-duration", 1500*time.Millisecond, "how long each kind of network fault lasts in the network fault tests")
	longFollow           = flag.Duration("long-follow", time.Minute, "how long TestLongFollowBoundedMemory runs (warm-up is a quarter of it)")
)

func TestMain(m *testing.M) {
	childwriter.Main()
	os.Exit(s3test.Run(m))
}

// testSeed is the seed a test runs with, logged so that a failure can be
// replayed with -reliability-seed.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -reliability-seed=%d)", seed, seed)
	return seed
}
