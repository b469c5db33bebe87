package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// seqTable is the writer's own table. Writing to it puts a frame in the
// WAL, so that after a checkpoint the WAL (and the replica's record of the
// WAL position) is never left without a frame of the current generation;
// reading it starts the long-running read transaction.
const seqTable = "_ltx_seq"

// sqliteHeader starts every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// ErrNotSQLite is wrapped by the error for a database path that is not a
// SQLite database.
var ErrNotSQLite = errors.New("not a SQLite database")

// checkSQLiteFile reports whether path holds a SQLite database (an empty
// file is one: SQLite gives it a header on the first write).
func checkSQLiteFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("database %s: %w: not a regular file", path, ErrNotSQLite)
	}
	if fi.Size() == 0 {
		return nil
	}
	b := make([]byte, 100)
	if _, err := io.ReadFull(f, b); err != nil {
		return fmt.Errorf("database %s: %w: %d bytes, shorter than a database header", path, ErrNotSQLite, fi.Size())
	}
	if !bytes.Equal(b[:16], sqliteHeader) {
		return fmt.Errorf("database %s: %w: the file does not start with %q", path, ErrNotSQLite, "SQLite format 3")
	}
	return nil
}

// conns are the writer's three connections to the database:
//
//   - w takes the write lock (BEGIN IMMEDIATE) while the WAL must not grow,
//     and writes the sequence table;
//   - r holds the long-running read transaction that keeps any checkpoint,
//     the application's too, from resetting the WAL past what was copied;
//   - c runs checkpoints, which SQLite refuses on a connection with an
//     open transaction.
type conns struct {
	w, r, c  *sqlite3.Conn
	pageSize uint32
	readTx   bool // r holds the read transaction
	writeTx  bool // w holds the write lock
}

func openConns(ctx context.Context, path string, busy time.Duration) (_ *conns, err error) {
	cs := &conns{}
	defer func() {
		if err != nil {
			cs.close()
		}
	}()
	open := func() (*sqlite3.Conn, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// A plain path, never created: the database must exist.
		c, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READWRITE)
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		if err := c.BusyTimeout(busy); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	if cs.w, err = open(); err != nil {
		return nil, err
	}
	var mode string
	if err := queryRow(cs.w, "PRAGMA journal_mode = wal", &mode); err != nil {
		if errors.Is(err, sqlite3.NOTADB) {
			return nil, fmt.Errorf("database %s: %w", path, ErrNotSQLite)
		}
		return nil, fmt.Errorf("set WAL mode on %s: %w", path, err)
	}
	if mode != "wal" {
		return nil, fmt.Errorf("set WAL mode on %s: journal mode stays %q", path, mode)
	}
	// The writer checkpoints only on purpose, through checkpoint().
	if err := cs.w.WALAutoCheckpoint(0); err != nil {
		return nil, fmt.Errorf("disable autocheckpoint on %s: %w", path, err)
	}
	if err := cs.w.Exec(`CREATE TABLE IF NOT EXISTS ` + seqTable + ` (id INTEGER PRIMARY KEY, seq INTEGER)`); err != nil {
		return nil, fmt.Errorf("create %s in %s: %w", seqTable, path, err)
	}
	var pageSize int64
	if err := queryRow(cs.w, "PRAGMA page_size", &pageSize); err != nil {
		return nil, fmt.Errorf("read page size of %s: %w", path, err)
	}
	cs.pageSize = uint32(pageSize)
	for _, c := range []**sqlite3.Conn{&cs.r, &cs.c} {
		if *c, err = open(); err != nil {
			return nil, err
		}
		if err := (*c).WALAutoCheckpoint(0); err != nil {
			return nil, err
		}
		// A connection only knows the database is in WAL mode once it has
		// read it; until then wal_checkpoint does nothing.
		var n int64
		if err := queryRow(*c, "SELECT count(*) FROM "+seqTable, &n); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	return cs, nil
}

func (cs *conns) close() error {
	var errs []error
	for _, c := range []*sqlite3.Conn{cs.r, cs.c, cs.w} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// beginRead starts the long-running read transaction. The SELECT is what
// takes SQLite's read mark: BEGIN alone is deferred.
func (cs *conns) beginRead() error {
	if cs.readTx {
		return nil
	}
	if err := cs.r.Exec("BEGIN"); err != nil {
		return fmt.Errorf("begin read transaction: %w", err)
	}
	var n int64
	if err := queryRow(cs.r, "SELECT count(*) FROM "+seqTable, &n); err != nil {
		_ = cs.r.Exec("ROLLBACK")
		return fmt.Errorf("begin read transaction: %w", err)
	}
	cs.readTx = true
	return nil
}

func (cs *conns) endRead() error {
	if !cs.readTx {
		return nil
	}
	cs.readTx = false
	if err := cs.r.Exec("ROLLBACK"); err != nil {
		return fmt.Errorf("end read transaction: %w", err)
	}
	return nil
}

// lockWrites takes SQLite's write lock: no transaction can commit, so the
// WAL cannot grow, until unlockWrites.
func (cs *conns) lockWrites() error {
	if err := cs.w.Exec("BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("take write lock: %w", err)
	}
	cs.writeTx = true
	return nil
}

func (cs *conns) unlockWrites() error {
	if !cs.writeTx {
		return nil
	}
	cs.writeTx = false
	if err := cs.w.Exec("ROLLBACK"); err != nil {
		return fmt.Errorf("release write lock: %w", err)
	}
	return nil
}

// bumpSeq commits a write to the sequence table.
func (cs *conns) bumpSeq() error {
	if err := cs.w.Exec(`INSERT INTO ` + seqTable + ` (id, seq) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET seq = seq + 1`); err != nil {
		return fmt.Errorf("write %s: %w", seqTable, err)
	}
	return nil
}

// checkpoint runs a checkpoint on c and returns the WAL frames and the
// frames backfilled into the database, as sqlite3_wal_checkpoint_v2 does.
func (cs *conns) checkpoint(mode sqlite3.CheckpointMode) (nLog, nCkpt int, err error) {
	return cs.c.WALCheckpoint("main", mode)
}

func queryRow(c *sqlite3.Conn, sql string, dst any) error {
	stmt, _, err := c.Prepare(sql)
	if err != nil {
		return err
	}
	defer stmt.Close()
	if !stmt.Step() {
		if err := stmt.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%s: no rows", sql)
	}
	switch d := dst.(type) {
	case *string:
		*d = stmt.ColumnText(0)
	case *int64:
		*d = stmt.ColumnInt64(0)
	default:
		return fmt.Errorf("queryRow: unsupported destination %T", dst)
	}
	return stmt.Close()
}

func isBusy(err error) bool {
	return errors.Is(err, sqlite3.BUSY) || errors.Is(err, sqlite3.LOCKED)
}
