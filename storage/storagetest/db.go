package storagetest

import (
	"bytes"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/compact"
	"github.com/superfly/ltx"
)

// DB is an in-memory SQLite-like page store that encodes its transactions as
// LTX files with correct rolling checksums, so tests can build replicas
// without a writer. It is not safe for concurrent use.
type DB struct {
	PageSize uint32
	Now      func() time.Time // timestamp of each transaction; time.Now if nil

	pages  map[uint32][]byte
	commit uint32
	txid   ltx.TXID
}

// NewDB returns an empty database with the given page size.
func NewDB(pageSize uint32) *DB {
	return &DB{PageSize: pageSize, pages: map[uint32][]byte{}}
}

// TXID is the last committed transaction.
func (db *DB) TXID() ltx.TXID { return db.txid }

// Commit is the database size in pages.
func (db *DB) Commit() uint32 { return db.commit }

// Page returns a copy of a page as of the last transaction, or nil.
func (db *DB) Page(pgno uint32) []byte { return bytes.Clone(db.pages[pgno]) }

// Checksum is the rolling checksum of the current state.
func (db *DB) Checksum() ltx.Checksum {
	var sum ltx.Checksum
	for pgno, data := range db.pages {
		sum ^= ltx.ChecksumPage(pgno, data)
	}
	return ltx.ChecksumFlag | sum
}

// Image returns the database file as of the last transaction.
func (db *DB) Image() []byte {
	b := make([]byte, int(db.commit)*int(db.PageSize))
	for pgno, data := range db.pages {
		copy(b[int(pgno-1)*int(db.PageSize):], data)
	}
	return b
}

// Apply commits a transaction that sets the given pages and leaves the
// database commit pages long (pages above commit are dropped), and returns
// it encoded as an L0 LTX file [n,n].
func (db *DB) Apply(tb testing.TB, commit uint32, pages map[uint32][]byte) []byte {
	tb.Helper()
	pre := ltx.Checksum(0)
	if db.txid > 0 {
		pre = db.Checksum()
	}
	for pgno, data := range pages {
		if len(data) != int(db.PageSize) {
			tb.Fatalf("page %d is %d bytes, want %d", pgno, len(data), db.PageSize)
		}
		db.pages[pgno] = bytes.Clone(data)
	}
	for pgno := range db.pages {
		if pgno > commit {
			delete(db.pages, pgno)
		}
	}
	db.commit = commit
	db.txid++

	hdr := ltx.Header{
		Version:          ltx.Version,
		PageSize:         db.PageSize,
		Commit:           commit,
		MinTXID:          db.txid,
		MaxTXID:          db.txid,
		Timestamp:        db.now().UnixMilli(),
		PreApplyChecksum: pre,
	}
	var ps []uint32
	for pgno := range pages {
		if pgno <= commit {
			ps = append(ps, pgno)
		}
	}
	slices.Sort(ps)
	if db.txid == 1 {
		// The first transaction is a snapshot and must hold every page.
		ps = slices.Sorted(maps.Keys(db.pages))
	}
	return db.encode(tb, hdr, ps)
}

// Snapshot encodes the current state as a snapshot [1,TXID].
func (db *DB) Snapshot(tb testing.TB) []byte {
	tb.Helper()
	hdr := ltx.Header{
		Version:   ltx.Version,
		PageSize:  db.PageSize,
		Commit:    db.commit,
		MinTXID:   1,
		MaxTXID:   db.txid,
		Timestamp: db.now().UnixMilli(),
	}
	return db.encode(tb, hdr, slices.Sorted(maps.Keys(db.pages)))
}

func (db *DB) encode(tb testing.TB, hdr ltx.Header, pgnos []uint32) []byte {
	tb.Helper()
	var buf bytes.Buffer
	enc, err := ltx.NewEncoder(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		tb.Fatal(err)
	}
	lock := ltx.LockPgno(db.PageSize)
	for _, pgno := range pgnos {
		if pgno == lock {
			continue
		}
		if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, db.pages[pgno]); err != nil {
			tb.Fatal(err)
		}
	}
	enc.SetPostApplyChecksum(db.Checksum())
	if err := enc.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func (db *DB) now() time.Time {
	if db.Now != nil {
		return db.Now()
	}
	return time.Now()
}

// Compact merges contiguous LTX files (oldest first) into one with the ltx
// Compactor.
func Compact(tb testing.TB, files ...[]byte) []byte {
	tb.Helper()
	b, err := compact.Bytes(files...)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Header decodes the header of an encoded LTX file.
func Header(tb testing.TB, file []byte) ltx.Header {
	tb.Helper()
	hdr, _, err := ltx.DecodeHeader(bytes.NewReader(file))
	if err != nil {
		tb.Fatal(err)
	}
	return hdr
}

// FillPage returns a page of size bytes that names pgno and a version, so a
// test can tell which version of a page it read.
func FillPage(size uint32, pgno uint32, version int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(int(pgno)*31 + version*7 + i/64)
	}
	copy(b, []byte{byte(pgno >> 24), byte(pgno >> 16), byte(pgno >> 8), byte(pgno), byte(version >> 8), byte(version)})
	return b
}
