package vfs

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	filereplica "github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// source is a primary for tests: a real SQLite database (rollback journal,
// written through the default VFS) whose every transaction is replicated,
// as the writer would, into an L0 file of a local replica holding exactly
// the pages it changed.
type source struct {
	tb     testing.TB
	path   string // the primary database file
	dir    string // the replica's root
	client *filereplica.Client
	db     *sql.DB
	pages  *storagetest.DB     // the replicated state; encodes the LTX files
	files  map[ltx.TXID][]byte // every L0 file, for compactions
	clock  time.Time           // the next transaction's timestamp
}

func newSource(tb testing.TB, pageSize int) *source {
	tb.Helper()
	base := tb.TempDir()
	s := &source{
		tb:    tb,
		path:  filepath.Join(base, "primary.db"),
		dir:   filepath.Join(base, "replica"),
		pages: storagetest.NewDB(uint32(pageSize)),
		files: map[ltx.TXID][]byte{},
		clock: time.Now().Add(-time.Hour).Truncate(time.Millisecond),
	}
	s.client = filereplica.New(s.dir)
	s.pages.Now = func() time.Time { return s.clock }
	db, err := sql.Open("sqlite3", fmt.Sprintf("file:%s?_pragma=page_size(%d)&_pragma=journal_mode(delete)&_pragma=auto_vacuum(incremental)", s.path, pageSize))
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	tb.Cleanup(func() { db.Close() })
	s.db = db
	return s
}

// exec runs SQL on the primary as one transaction and replicates it.
func (s *source) exec(query string, args ...any) ltx.TXID {
	s.tb.Helper()
	if _, err := s.db.Exec(query, args...); err != nil {
		s.tb.Fatalf("primary: %s: %v", query, err)
	}
	return s.sync()
}

// sync writes the pages that changed since the last L0 file as a new one.
func (s *source) sync() ltx.TXID {
	s.tb.Helper()
	img, err := os.ReadFile(s.path)
	if err != nil {
		s.tb.Fatal(err)
	}
	ps := int(s.pages.PageSize)
	commit := uint32(len(img) / ps)
	changed := map[uint32][]byte{}
	for pgno := uint32(1); pgno <= commit; pgno++ {
		page := img[int(pgno-1)*ps : int(pgno)*ps]
		if !bytes.Equal(page, s.pages.Page(pgno)) {
			changed[pgno] = page
		}
	}
	if len(changed) == 0 && commit == s.pages.Commit() {
		return s.pages.TXID()
	}
	b := s.pages.Apply(s.tb, commit, changed)
	txid := s.pages.TXID()
	s.files[txid] = b
	s.put(0, b)
	s.clock = s.clock.Add(time.Minute)
	return txid
}

// timeOf is the commit time of a TXID, as written in its file.
func (s *source) timeOf(txid ltx.TXID) time.Time {
	return time.UnixMilli(storagetest.Header(s.tb, s.files[txid]).Timestamp).UTC()
}

func (s *source) put(level int, b []byte) {
	s.tb.Helper()
	hdr := storagetest.Header(s.tb, b)
	if _, err := s.client.WriteLTXFile(context.Background(), level, hdr.MinTXID, hdr.MaxTXID, bytes.NewReader(b)); err != nil {
		s.tb.Fatal(err)
	}
}

// compact writes the L0 files min..max compacted into one file of level.
func (s *source) compact(level int, min, max ltx.TXID) {
	s.tb.Helper()
	var in [][]byte
	for txid := min; txid <= max; txid++ {
		in = append(in, s.files[txid])
	}
	s.put(level, storagetest.Compact(s.tb, in...))
}

// snapshot writes the current state as a snapshot [1,TXID] in level 9.
func (s *source) snapshot() {
	s.tb.Helper()
	s.put(storage.SnapshotLevel, s.pages.Snapshot(s.tb))
}

// remove deletes files from the replica, as retention does.
func (s *source) remove(level int, ranges ...[2]ltx.TXID) {
	s.tb.Helper()
	var infos []*ltx.FileInfo
	for _, r := range ranges {
		infos = append(infos, &ltx.FileInfo{Level: level, MinTXID: r[0], MaxTXID: r[1]})
	}
	if err := s.client.DeleteLTXFiles(context.Background(), infos); err != nil {
		s.tb.Fatal(err)
	}
}

// dsn names the replica in a DSN for the ltx VFS, with extra parameters.
func (s *source) dsn(extra ...string) string {
	q := append([]string{"vfs=ltx", "replica=" + url.QueryEscape(s.dir)}, extra...)
	return "file:app.db?" + strings.Join(q, "&")
}

// open opens the replica through the VFS with database/sql.
func (s *source) open(extra ...string) *sql.DB {
	s.tb.Helper()
	return openDB(s.tb, s.dsn(extra...))
}

func openDB(tb testing.TB, dsn string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// querier is *sql.DB, *sql.Conn or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ints runs a query that returns one integer column.
func ints(tb testing.TB, q querier, query string, args ...any) []int64 {
	tb.Helper()
	rows, err := q.QueryContext(context.Background(), query, args...)
	if err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			tb.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return out
}

// one runs a query that returns one value.
func one[T any](tb testing.TB, q querier, query string, args ...any) T {
	tb.Helper()
	var v T
	if err := q.QueryRowContext(context.Background(), query, args...).Scan(&v); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return v
}

// pollNow runs one poll of the replica behind a DSN or attached name, as
// the poller does every interval, so tests need not wait for it.
func pollNow(tb testing.TB, key string) {
	tb.Helper()
	registryMu.Lock()
	r := replicas[key]
	registryMu.Unlock()
	if r == nil {
		tb.Fatalf("no replica %s is open", key)
	}
	if err := r.pollOnce(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

func (s *source) key() string { return "url:file://" + s.dir }

func headerOf(tb testing.TB, b []byte) ltx.Header { return storagetest.Header(tb, b) }
