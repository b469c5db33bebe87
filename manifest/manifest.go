package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// Name is the object name of a replica's manifest.
const Name = "manifest"

// Version is the manifest format this package writes and reads.
const Version = 1

// MaxSize bounds a manifest a reader accepts.
const MaxSize = 16 << 20

// A Manifest says what a reader needs to open a replica's newest TXID
// without listing it: the TXID and its commit time, and the files of the
// plan that rebuilds it (a snapshot, then the files that extend it, in
// order), each with what identifies its content (level, TXIDs, size, file
// checksum) and where its page index comes from: its hint object (files
// larger than WholeFileMax), or inline, as a hint without frames (the
// smaller ones). The writer replaces it atomically after every change a
// reader can see; Seq grows with each, across writers, so that a reader
// can tell an older manifest (a cache's stale copy) from a newer one.
//
// Stored as one line, "ltxvfs-manifest <version> <length> <CRC-32C>",
// then that many bytes of JSON: a manifest cut short or damaged is
// detected, and one of another version is refused by name.
type Manifest struct {
	TXID ltx.TXID  `json:"txid"`
	Time time.Time `json:"time"` // commit time of TXID
	Seq  uint64    `json:"seq"`
	// History names the replica's history: chosen at random by the writer
	// that found no manifest (a replica begun, or begun again after its
	// files were lost), kept by every writer after it. TXIDs of two
	// histories name different commits: a reader that sees it change
	// builds afresh, and never mixes pages of the two ("" in manifests of
	// writers before it: unknown).
	History   string    `json:"history,omitempty"`
	Published time.Time `json:"published"`
	Files     []File    `json:"files"`
}

// File is one file of a manifest's plan.
type File struct {
	Level    int          `json:"level"`
	MinTXID  ltx.TXID     `json:"min"`
	MaxTXID  ltx.TXID     `json:"max"`
	Size     int64        `json:"size"`
	Checksum ltx.Checksum `json:"checksum"` // the file checksum in its trailer
	Created  time.Time    `json:"created"`  // its header's timestamp

	// HintSize is the size of the file's hint object (see HintName), for
	// a file larger than WholeFileMax; 0 for a file read without one.
	HintSize int64 `json:"hint,omitempty"`
	// Index is, for a smaller file, its hint without frames.
	Index []byte `json:"index,omitempty"`
}

// Source identifies f by content.
func (f File) Source() Source {
	return Source{Level: f.Level, MinTXID: f.MinTXID, MaxTXID: f.MaxTXID, Size: f.Size, FileChecksum: f.Checksum}
}

// Info is f as a listing would describe it.
func (f File) Info() *ltx.FileInfo {
	return &ltx.FileInfo{Level: f.Level, MinTXID: f.MinTXID, MaxTXID: f.MaxTXID, Size: f.Size, CreatedAt: f.Created}
}

// Name is "L<level>/<min>-<max>.ltx", for messages.
func (f File) Name() string { return storage.FileName(f.Level, f.MinTXID, f.MaxTXID) }

// ErrInvalid is wrapped by every error of Decode: the reader then lists
// the replica instead.
var ErrInvalid = errors.New("invalid manifest")

const magic = "ltxvfs-manifest"

// Encode returns the manifest's bytes.
func (m *Manifest) Encode() ([]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	head := fmt.Sprintf("%s %d %d %08x\n", magic, Version, len(body), Sum(body))
	return append([]byte(head), body...), nil
}

// Decode reads a manifest and checks it: its length and CRC, its version,
// and that its files form a plan that reaches its TXID (a snapshot first,
// each file extending the one before without a gap, the last ending at
// TXID), each file with a hint or a valid inline index that describes it.
func Decode(b []byte) (*Manifest, error) {
	fail := func(format string, args ...any) (*Manifest, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	line, body, ok := bytes.Cut(b, []byte{'\n'})
	fields := bytes.Fields(line)
	if !ok || len(fields) != 4 || string(fields[0]) != magic {
		return fail("no manifest header")
	}
	if v, err := strconv.Atoi(string(fields[1])); err != nil || v != Version {
		return fail("format version %q; this reader knows version %d", fields[1], Version)
	}
	n, err := strconv.Atoi(string(fields[2]))
	if err != nil || n != len(body) {
		return fail("%d bytes of %s: cut short or damaged", len(body), fields[2])
	}
	if got := fmt.Sprintf("%08x", Sum(body)); got != string(fields[3]) {
		return fail("CRC-32C is %s, the manifest says %s: damaged", got, fields[3])
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return fail("%v", err)
	}
	if err := m.check(); err != nil {
		return fail("%v", err)
	}
	return &m, nil
}

// check is what Decode checks of a manifest's content.
func (m *Manifest) check() error {
	if len(m.Files) == 0 {
		return errors.New("no files")
	}
	if m.Files[0].MinTXID != 1 {
		return fmt.Errorf("the plan starts with %s, not a snapshot", m.Files[0].Name())
	}
	for i, f := range m.Files {
		if f.Level < 0 || f.Level > storage.SnapshotLevel || f.MinTXID == 0 || f.MaxTXID < f.MinTXID {
			return fmt.Errorf("file %d: %s", i, f.Name())
		}
		// Each file extends the one before: it starts at or before the
		// TXID after it and ends after it. A compaction may overlap the
		// file before (a snapshot taken while it was being written, say):
		// its pages are the newest of its TXIDs, so the overlap applies
		// again what it holds, as plan.Restore's plans do.
		if prev := m.Files[max(i-1, 0)]; i > 0 && (f.MinTXID > prev.MaxTXID+1 || f.MaxTXID <= prev.MaxTXID) {
			return fmt.Errorf("%s does not extend %s", f.Name(), prev.Name())
		}
		switch {
		case f.Size <= WholeFileMax && f.Index == nil:
			return fmt.Errorf("%s: no inline index", f.Name())
		case f.Index != nil:
			h, err := DecodeHint(f.Index)
			if err != nil {
				return fmt.Errorf("%s: inline index: %w", f.Name(), err)
			}
			if err := h.Describes(f.Source()); err != nil {
				return fmt.Errorf("%s: inline index: %w", f.Name(), err)
			}
		}
	}
	if last := m.Files[len(m.Files)-1]; last.MaxTXID != m.TXID {
		return fmt.Errorf("the plan ends at %s, the manifest says TXID %s", last.Name(), m.TXID)
	}
	return nil
}

// InlineIndex returns the page index of f carried inline, decoded; nil
// when it has none (a hint object, or nothing: see HintSize).
func (f File) InlineIndex() (*Hint, error) {
	if f.Index == nil {
		return nil, nil
	}
	return DecodeHint(f.Index)
}

// Newer reports whether m is newer than o: a higher TXID, or the same TXID
// published later.
//
// A manifest of another History is never Newer: see BegunAgain.
func (m *Manifest) Newer(o *Manifest) bool {
	return o == nil || m.TXID > o.TXID || (m.TXID == o.TXID && m.Seq > o.Seq)
}

// BegunAgain reports whether m describes another history of the replica
// than o: both name one, and not the same.
func (m *Manifest) BegunAgain(o *Manifest) bool {
	return o != nil && m.History != "" && o.History != "" && m.History != o.History
}

// SameFiles reports whether two manifests name the same files.
func (m *Manifest) SameFiles(o *Manifest) bool {
	return slices.EqualFunc(m.Files, o.Files, func(a, b File) bool { return a.Source() == b.Source() })
}

// inlineIndex encodes the page index of a small file: its hint without
// frames.
func inlineIndex(h *Hint) []byte {
	c := *h
	c.Frames = nil
	return c.Encode()
}

// FileOf describes, for a manifest, the file that hint h describes, with
// its commit time: large files name their hint object, smaller ones carry
// their page index inline.
func FileOf(h *Hint, hintSize int64) File {
	f := File{
		Level:    h.Level,
		MinTXID:  h.Header.MinTXID,
		MaxTXID:  h.Header.MaxTXID,
		Size:     h.Size,
		Checksum: h.Trailer.FileChecksum,
		Created:  time.UnixMilli(h.Header.Timestamp).UTC(),
	}
	if h.Size <= WholeFileMax {
		f.Index = inlineIndex(h)
	} else {
		f.HintSize = hintSize
	}
	return f
}
