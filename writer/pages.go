package writer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/superfly/ltx"
)

// dbView is the database at one WAL position, the way SQLite reads it at
// the end of the WAL: each page from its newest frame in the generation up
// to that position, else from the database file.
//
// The read transaction makes the database file safe to read: a checkpoint
// backfills no frame past the read mark, which is at or before any position
// the writer has read the WAL to.
type dbView struct {
	db       *os.File
	wal      *os.File // nil when the WAL is empty
	hdr      walHeader
	gen      map[uint32]frameRef
	commit   uint32
	pageSize uint32
}

// forEach calls fn with every page of the view in order, the lock page
// excepted. data is reused between calls.
func (v *dbView) forEach(ctx context.Context, fn func(pgno uint32, data []byte) error) error {
	lock := ltx.LockPgno(v.pageSize)
	frame := make([]byte, walFrameHeaderSize+int(v.pageSize))
	const batch = 256 // pages read from the database file at once
	chunk := make([]byte, batch*int(v.pageSize))
	var chunkStart, chunkPages uint32 // pages [chunkStart, chunkStart+chunkPages) are in chunk
	for pgno := uint32(1); pgno <= v.commit; pgno++ {
		if pgno == lock {
			continue
		}
		if pgno%batch == 1 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var data []byte
		if ref, ok := v.gen[pgno]; ok {
			d, err := readFrame(v.wal, v.hdr, ref, frame)
			if err != nil {
				return err
			}
			data = d
		} else {
			if pgno < chunkStart || pgno >= chunkStart+chunkPages {
				n, err := v.db.ReadAt(chunk, int64(pgno-1)*int64(v.pageSize))
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read database page %d: %w", pgno, err)
				}
				chunkStart, chunkPages = pgno, uint32(n/int(v.pageSize))
				if chunkPages == 0 {
					return fmt.Errorf("read database page %d of %d: %w", pgno, v.commit, errShortDatabase)
				}
			}
			off := int(pgno-chunkStart) * int(v.pageSize)
			data = chunk[off : off+int(v.pageSize)]
		}
		if err := fn(pgno, data); err != nil {
			return err
		}
	}
	return nil
}

// sums returns the per-page checksums of the view.
func (v *dbView) sums(ctx context.Context) ([]ltx.Checksum, error) {
	sums := make([]ltx.Checksum, v.commit)
	err := v.forEach(ctx, func(pgno uint32, data []byte) error {
		sums[pgno-1] = ltx.ChecksumPage(pgno, data)
		return nil
	})
	return sums, err
}

// dbFileCommit is the database size in pages from the database file alone,
// for when the WAL holds no frame: the size in the header when SQLite
// vouches for it (version-valid-for equals the change counter), else the
// file size.
func dbFileCommit(db *os.File, pageSize uint32) (uint32, error) {
	fi, err := db.Stat()
	if err != nil {
		return 0, err
	}
	hdr := make([]byte, 100)
	if _, err := db.ReadAt(hdr, 0); err != nil {
		if errors.Is(err, io.EOF) && fi.Size() == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("read database header: %w", err)
	}
	if n := binary.BigEndian.Uint32(hdr[28:]); n > 0 && binary.BigEndian.Uint32(hdr[92:]) == binary.BigEndian.Uint32(hdr[24:]) {
		return n, nil
	}
	return uint32(fi.Size() / int64(pageSize)), nil
}
