package childwriter_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/ltxvfs/ltxvfs/internal/childwriter"
	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
	"github.com/ltxvfs/ltxvfs/writer"
)

func TestMain(m *testing.M) {
	childwriter.Main()
	os.Exit(m.Run())
}

func newDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('x')`); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestChildRecordsAndStops: a child writer prints every file it wrote
// (what storage holds), and SIGTERM stops it with a final sync and exit
// code 0.
func TestChildRecordsAndStops(t *testing.T) {
	replica := filepath.Join(t.TempDir(), "replica")
	c := childwriter.Start(t, childwriter.Config{
		DB: newDB(t), Replica: replica, Record: true,
		Options: writer.Options{SyncInterval: 10 * time.Millisecond, SnapshotInterval: -1},
	})
	c.WaitReady(t)
	for deadline := time.Now().Add(30 * time.Second); len(c.Writes(t)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the child wrote nothing in 30s: %s", c.Log())
		}
	}
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-c.Exited()
	if c.ExitCode() != 0 {
		t.Fatalf("exit code %d after SIGTERM: %s", c.ExitCode(), c.Log())
	}
	for _, w := range c.Writes(t) {
		got := storagetest.ReadFile(t, file.New(replica), w.Level, w.MinTXID, w.MaxTXID)
		if sum := fmt.Sprintf("%x", sha256.Sum256(got)); sum != w.Sum {
			t.Fatalf("the child recorded %s as %s; storage holds %s", w, w.Sum, sum)
		}
	}
}

// TestChildRefusedLease: a child whose replica is leased exits with code
// 1 and one line naming the holder.
func TestChildRefusedLease(t *testing.T) {
	replica := filepath.Join(t.TempDir(), "replica")
	l, err := file.New(replica).AcquireLease(context.Background(), lease.Holder{Owner: "the test"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	c := childwriter.Start(t, childwriter.Config{DB: newDB(t), Replica: replica})
	<-c.Exited()
	lines := strings.Split(strings.TrimSpace(c.Log()), "\n")
	if last := lines[len(lines)-1]; c.ExitCode() != 1 || !strings.Contains(last, "held by the test") {
		t.Fatalf("exit code %d, last line %q: want 1 and the holder", c.ExitCode(), last)
	}
}
