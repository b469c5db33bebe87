package writer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/superfly/ltx"
)

// SidecarSuffix names the position file kept beside the database:
// <db>-ltx.
//
// Files written without rolling checksums (the default, for Litestream's
// restore) leave the replica with no record of the database's checksum, so
// after a clean application restart (the WAL checkpointed and deleted) a
// new writer could not tell that the database file is exactly the
// replica's newest state, and would copy the whole database again. The
// writer therefore keeps, after every upload, the replica's position and
// the database's rolling checksum there.
//
// The file is a hint and never trusted on its own: it is used only when it
// names this replica and exactly the replica's newest file (TXID range,
// size and the file's own CRC-64, which the replica's trailer gives), and
// then only as the checksum the database file must have, which the writer
// computes from the file itself. A file that is stale, foreign, damaged or
// describes a database that has changed since leads to the safe path: a
// whole-database L0 file at the next TXID.
const SidecarSuffix = "-ltx"

// sidecar is the content of the position file.
type sidecar struct {
	Replica      string       `json:"replica"`
	PageSize     uint32       `json:"page_size"`
	MinTXID      ltx.TXID     `json:"min_txid"` // the newest L0 file uploaded
	MaxTXID      ltx.TXID     `json:"max_txid"`
	Size         int64        `json:"size"`
	FileChecksum ltx.Checksum `json:"file_checksum"` // the file's trailer CRC-64
	Commit       uint32       `json:"commit"`        // database size in pages at MaxTXID
	Checksum     ltx.Checksum `json:"checksum"`      // the database's rolling checksum at MaxTXID
}

// writeSidecar replaces the position file atomically (temp file, rename):
// a writer killed half-way leaves the old file or the new one, and a
// reader never sees half of one. It is not synced to disk: after a power
// loss an old or empty file only costs a whole-database L0 file.
func writeSidecar(path string, sc sidecar, perm os.FileMode) error {
	b, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), perm); err != nil {
		return fmt.Errorf("write position file %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write position file %s: %w", path, err)
	}
	return nil
}

// readSidecar reads the position file; a missing file is (nil, nil).
func readSidecar(path string) (*sidecar, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read position file %s: %w", path, err)
	}
	var sc sidecar
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("position file %s: %w", path, err)
	}
	return &sc, nil
}

// mismatch says why the position file does not describe the replica's
// newest file, or "" if it does.
func (sc *sidecar) mismatch(replica string, pageSize uint32, rp *replicaPos) string {
	switch {
	case sc.Replica != replica:
		return fmt.Sprintf("it describes the replica %s", sc.Replica)
	case sc.PageSize != pageSize:
		return fmt.Sprintf("it describes pages of %d bytes", sc.PageSize)
	case rp.last == nil:
		return "the replica's newest TXID is not in an L0 file"
	case sc.MinTXID != rp.last.MinTXID || sc.MaxTXID != rp.last.MaxTXID:
		return fmt.Sprintf("it names TXIDs %s-%s, the replica's newest file holds %s-%s", sc.MinTXID, sc.MaxTXID, rp.last.MinTXID, rp.last.MaxTXID)
	case sc.Size != rp.last.Size || sc.FileChecksum != rp.fileChecksum:
		return "the replica's newest file is not the one it describes"
	case sc.Commit != rp.commit:
		return fmt.Sprintf("it gives a database of %d pages, the replica %d", sc.Commit, rp.commit)
	case sc.Checksum&ltx.ChecksumFlag == 0:
		return "it holds no valid checksum"
	}
	return ""
}

// adoptSidecar takes the database's checksum at the replica's newest TXID
// from the position file, when the replica's files carry none and the file
// names exactly that newest file. Every failure is only logged: without the
// checksum the writer takes the safe path.
func (r *Replicator) adoptSidecar(rp *replicaPos) {
	if rp.post != 0 || rp.txid == 0 {
		return
	}
	path := r.path + SidecarSuffix
	sc, err := readSidecar(path)
	switch {
	case err != nil:
		r.log.Warn("ignoring the position file", "error", err)
		return
	case sc == nil:
		return
	}
	if why := sc.mismatch(r.client.String(), r.pageSize, rp); why != "" {
		r.log.Info("ignoring the position file: "+why, "file", path, "replica_txid", rp.txid)
		return
	}
	rp.post = sc.Checksum
	r.log.Debug("the replica's checksum at its newest TXID comes from the position file", "file", path, "txid", rp.txid, "checksum", sc.Checksum)
}

// saveSidecar records the file just uploaded and the state after it.
// Failing to is only logged: an old position file names an older TXID and
// is then ignored.
func (r *Replicator) saveSidecar(p *pendingFile) {
	sc := sidecar{
		Replica:      r.client.String(),
		PageSize:     r.pageSize,
		MinTXID:      p.hdr.MinTXID,
		MaxTXID:      p.hdr.MaxTXID,
		Size:         p.body.size,
		FileChecksum: p.fileChecksum,
		Commit:       r.st.commit,
		Checksum:     r.st.post,
	}
	if sc.Checksum == 0 {
		// Nothing worth recording; a stale file must not outlive this
		// upload either.
		if err := os.Remove(r.path + SidecarSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("remove the position file", "error", err)
		}
		return
	}
	if err := writeSidecar(r.path+SidecarSuffix, sc, r.dbPerm); err != nil {
		r.log.Warn("could not keep the replica's position beside the database; a restart without the WAL will copy the whole database", "error", err)
		os.Remove(r.path + SidecarSuffix)
	}
}
