package storage

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/superfly/ltx"
)

// The on-storage layout is Litestream v0.5's, so that replicas written by
// either tool are read by the other:
//
//	file: <root>/ltx/<level in decimal>/<minTXID>-<maxTXID>.ltx
//	s3:   <prefix>/<level as %04x>/<minTXID>-<maxTXID>.ltx
//
// TXIDs are 16 lower-case hex digits (ltx.FormatFilename). The objects
// ltxvfs adds (see ObjectDir) live where Litestream never looks:
//
//	file: <root>/ltx/ltxvfs/<name>
//	s3:   <prefix>/ltxvfs/<name>

// FileLevelDir is the directory of one level in a file replica.
func FileLevelDir(root string, level int) string {
	return filepath.Join(root, "ltx", strconv.Itoa(level))
}

// FilePath is the path of one LTX file in a file replica.
func FilePath(root string, level int, minTXID, maxTXID ltx.TXID) string {
	return filepath.Join(FileLevelDir(root, level), ltx.FormatFilename(minTXID, maxTXID))
}

// ObjectLevelPrefix is the key prefix, ending in a slash, of one level in an
// S3 replica. It is built exactly as Litestream builds it, prefix + "/" +
// level, so an empty prefix gives keys that start with a slash, as there.
func ObjectLevelPrefix(prefix string, level int) string {
	return prefix + "/" + fmt.Sprintf("%04x", level) + "/"
}

// ObjectKey is the key of one LTX file in an S3 replica.
func ObjectKey(prefix string, level int, minTXID, maxTXID ltx.TXID) string {
	return ObjectLevelPrefix(prefix, level) + ltx.FormatFilename(minTXID, maxTXID)
}

// FileObjectDir is the object folder (see ObjectDir) of a file replica:
// <root>/ltx/ltxvfs, beside the level directories, where Litestream, which
// only reads directories named by a level, never looks.
func FileObjectDir(root string) string {
	return filepath.Join(root, "ltx", ObjectDir)
}

// ObjectDirPrefix is the key prefix, ending in a slash, of the object
// folder of an S3 replica: <prefix>/ltxvfs/. Unlike the level prefixes it
// has no leading slash when the prefix is empty, so that it never depends
// on how a server treats such keys (see the s3 backend's objectsUnder):
// Litestream's layout does not constrain it.
func ObjectDirPrefix(prefix string) string {
	if prefix == "" {
		return ObjectDir + "/"
	}
	return prefix + "/" + ObjectDir + "/"
}

// FileName names a file for messages: "L1/0000000000000001-0000000000000010.ltx".
func FileName(level int, minTXID, maxTXID ltx.TXID) string {
	return fmt.Sprintf("L%d/%s", level, ltx.FormatFilename(minTXID, maxTXID))
}

// LegacyHintLevel held the hints of the first ltxvfs releases (LTX files
// named after the TXID their file ends at); hints now live among the
// replica's objects (see package manifest). Writers still delete the old
// ones when their file goes, so the level stays valid.
const LegacyHintLevel = 16

// CheckLevel rejects a level that no replica file is stored at: 0 through
// SnapshotLevel, and LegacyHintLevel. Every backend checks the levels it is given
// with it, so that a new level is added in one place.
func CheckLevel(level int) error {
	if (level < 0 || level > SnapshotLevel) && level != LegacyHintLevel {
		return fmt.Errorf("invalid level %d (want 0..%d, or %d for legacy hints)", level, SnapshotLevel, LegacyHintLevel)
	}
	return nil
}
