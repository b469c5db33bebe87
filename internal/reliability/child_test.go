package reliability

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/childwriter"
	"github.com/ltxvfs/ltxvfs/writer"
)

// childOpts make a writer that syncs, checkpoints, compacts and snapshots
// often, so that a kill lands in the middle of each.
func childOpts(temp string, log *slog.Logger) writer.Options {
	return writer.Options{
		SyncInterval:        10 * time.Millisecond,
		MinCheckpointPages:  30,
		TruncatePages:       120,
		CheckpointInterval:  100 * time.Millisecond,
		CompactionIntervals: []time.Duration{50 * time.Millisecond, 200 * time.Millisecond},
		SnapshotInterval:    300 * time.Millisecond,
		BusyTimeout:         2 * time.Second,
		TempDir:             temp,
		Logger:              log,
	}
}

// startChild starts a writer process on db and replica (a directory), for
// the crash loop.
func startChild(t *testing.T, db, replica, temp string) *childwriter.Child {
	t.Helper()
	return childwriter.Start(t, childwriter.Config{DB: db, Replica: replica, Options: childOpts(temp, nil)})
}

// snapshotsL0 counts the whole-database L0 files a writer logged, with
// their reasons.
func snapshotsL0(log string) []string {
	var reasons []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "writing a snapshot as the next L0 file") {
			continue
		}
		if i := strings.Index(line, "reason="); i >= 0 {
			reason := line[i+len("reason="):]
			if q, err := strconv.QuotedPrefix(reason); err == nil {
				reason, _ = strconv.Unquote(q)
			} else {
				reason, _, _ = strings.Cut(reason, " ")
			}
			reasons = append(reasons, reason)
		}
	}
	return reasons
}

// tiedWithoutWAL counts the times a writer logged that it tied the
// database to the replica by its checksum, the WAL position lost.
func tiedWithoutWAL(log string) int {
	return strings.Count(log, "the database file matches the replica; continuing")
}

// tail is the end of a child's log, for failure messages.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
