package reliability

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
)

// openApp opens the application's connection pool on the database at
// path, in WAL mode, with the model's tables.
func openApp(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(modelSchema); err != nil {
		db.Close()
		t.Fatal(err)
	}
	return db
}

// appLoad commits the model's transactions, one after another, until
// halted, with the application's own checkpoints (every mode in turn) now
// and then; pause holds it between two transactions.
type appLoad struct {
	t    testing.TB
	m    *model
	path string

	pause sync.Mutex // held between transactions; guards db and ckpt
	db    *sql.DB
	ckpt  *sql.DB // the application's checkpoints: a short busy timeout

	stop        chan struct{}
	done        chan error
	checkpoints map[string]int // succeeded, by mode (under pause)
}

func startAppLoad(t testing.TB, path string, m *model) *appLoad {
	l := &appLoad{t: t, m: m, path: path, stop: make(chan struct{}), done: make(chan error, 1), checkpoints: map[string]int{}}
	l.open()
	go l.run()
	t.Cleanup(func() {
		l.halt()
		l.pause.Lock()
		l.db.Close()
		l.ckpt.Close()
		l.pause.Unlock()
	})
	return l
}

func (l *appLoad) open() {
	l.db = openApp(l.t, l.path)
	ckpt, err := sql.Open("sqlite3", "file:"+l.path+"?_pragma=busy_timeout(20)")
	if err != nil {
		l.t.Fatal(err)
	}
	l.ckpt = ckpt
}

func (l *appLoad) run() {
	modes := []string{"PASSIVE", "FULL", "RESTART", "TRUNCATE"}
	for {
		select {
		case <-l.stop:
			l.done <- nil
			return
		default:
		}
		l.pause.Lock()
		k := l.m.committed() + 1
		err := l.m.runTxn(context.Background(), l.db, k)
		if err == nil && k%150 == 0 {
			mode := modes[(k/150)%4]
			var busy, log, done int
			if l.ckpt.QueryRow(`PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &done) == nil && busy == 0 {
				l.checkpoints[mode]++
			}
		}
		l.pause.Unlock()
		if err != nil {
			l.done <- err
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// halt stops the load and fails the test if a transaction failed.
func (l *appLoad) halt() {
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	if err := <-l.done; err != nil {
		l.t.Errorf("application load: %v", err)
	}
}

// restartAppLocked closes every connection of the application, which
// checkpoints the WAL into the database and deletes it when no other
// process has the database open, and opens them again. It reports whether
// the WAL was deleted. The caller holds pause.
func (l *appLoad) restartAppLocked() bool {
	l.ckpt.Close()
	l.db.Close()
	_, err := os.Stat(l.path + "-wal")
	l.open()
	return errors.Is(err, os.ErrNotExist)
}

// fileState reads the state of a database file opened on its own.
func fileState(ctx context.Context, path string) (int64, fingerprint, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, fingerprint{}, err
	}
	defer db.Close()
	k, fp, err := readState(ctx, db)
	if err != nil {
		return 0, fp, fmt.Errorf("database %s: %w", path, err)
	}
	return k, fp, nil
}

// checkRestoreWhole restores the newest TXID of client into a file and
// checks that it holds every transaction m committed, as m committed it.
func checkRestoreWhole(t *testing.T, ctx context.Context, client storage.Client, m *model) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "restored.db")
	if _, err := restore.Run(ctx, client, dst, restore.Options{}); err != nil {
		t.Fatal(err)
	}
	k, fp, err := fileState(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.check(k, fp); err != nil || k != m.committed() {
		t.Fatalf("the restore holds transaction %d of %d: %v", k, m.committed(), err)
	}
}
