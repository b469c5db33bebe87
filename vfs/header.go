package vfs

import (
	"bytes"
	"encoding/binary"

	"github.com/ltxvfs/ltxvfs/index"
)

// SQLite database header fields rewritten on page 1
// (https://sqlite.org/fileformat.html#the_database_header).
const (
	hdrWriteVersion  = 18 // 1 = rollback journal, 2 = WAL
	hdrReadVersion   = 19
	hdrChangeCounter = 24
	hdrPageCount     = 28
	hdrVersionValid  = 92 // the change counter the page count is valid for
	hdrSize          = 100
)

// patchHeader returns page 1 as the VFS serves it at version v:
//   - in rollback-journal mode (18-19 = 1), so that SQLite never looks for a
//     -wal or -shm file that does not exist;
//   - with the change counter (24-27) and version-valid-for (92-95) set from
//     the version's Seq: at the start of each read transaction SQLite
//     compares them with what it saw last, and drops its own page cache
//     exactly when the version changed and keeps it otherwise (not from the
//     TXID: a replica begun again, or a version built again after its files
//     vanished, shows a TXID SQLite saw with other bytes);
//   - with the page count (28-31) set to the version's Commit, which the
//     valid-for number makes SQLite trust, so that it agrees with Size.
func patchHeader(page []byte, v *index.Version) []byte {
	b := bytes.Clone(page)
	if len(b) < hdrSize {
		return b
	}
	b[hdrWriteVersion], b[hdrReadVersion] = 1, 1
	binary.BigEndian.PutUint32(b[hdrChangeCounter:], uint32(v.Seq()))
	binary.BigEndian.PutUint32(b[hdrPageCount:], v.Commit())
	binary.BigEndian.PutUint32(b[hdrVersionValid:], uint32(v.Seq()))
	return b
}

// sqliteMagic starts every SQLite database file.
var sqliteMagic = []byte("SQLite format 3\x00")
