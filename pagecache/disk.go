package pagecache

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/superfly/ltx"
)

// DefaultDiskBytes bounds a disk tier made without a size.
const DefaultDiskBytes = 1 << 30

// Disk is a second tier of pages in files under a directory: pages are
// immutable, so a page kept there serves a process started later as well as
// this one, without a request. Each page is one file, written to a temp
// file and renamed into place, and carries its key, its length and a
// CRC-32C of both: a torn or foreign file is never served, only dropped.
// The files are bounded by bytes: past the bound the least recently used
// go, those found at start (oldest first) before those written since.
//
// A Disk is safe for concurrent use. Several processes may share a
// directory; each bounds what it knows of.
type Disk struct {
	dir string
	max int64

	mu      sync.Mutex
	lru     *simplelru.LRU[string, int64] // pages written or read by this process: path -> bytes
	found   []diskEntry                   // pages found at start, oldest first (some since in lru)
	isFound map[string]int64              // those of found not yet in lru: path -> bytes
	used    int64
	removed int64

	queue   chan diskWrite
	done    chan struct{} // closed by Close
	stopped chan struct{} // closed when run returns
	closed  sync.Once
	hits    int64
	misses  int64
}

type diskEntry struct {
	path string
	size int64
	mod  time.Time
}

type diskWrite struct {
	key  Key
	page []byte

	object string // if set, an object to keep instead of a page
}

// diskMagic starts every page file.
const diskMagic = "LTXP\x01"

// diskHeaderSize: magic, level (4), min and max TXIDs (8 each), file
// checksum (8), pgno (4), page length (4), CRC-32C (4).
const diskHeaderSize = len(diskMagic) + 4 + 8 + 8 + 8 + 4 + 4 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenDisk opens (making it if need be) a disk tier in dir, bounded to
// maxBytes (DefaultDiskBytes if 0). It looks at the files there in the
// background, so opening is quick however many there are.
func OpenDisk(dir string, maxBytes int64) (*Disk, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultDiskBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open page disk cache %s: %w", dir, err)
	}
	// Pages there are served to queries: a directory that others may write
	// to would let them plant pages (a page's CRC guards against damage,
	// not against a forger).
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open page disk cache %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open page disk cache %s: not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("open page disk cache %s: the directory is writable by other users (mode %04o); give it mode 0700 or 0755", dir, perm)
	}
	lru, err := simplelru.NewLRU[string, int64](math.MaxInt, nil)
	if err != nil {
		panic(err) // notest: the size is positive
	}
	d := &Disk{dir: dir, max: maxBytes, lru: lru, isFound: map[string]int64{}, queue: make(chan diskWrite, 256), done: make(chan struct{}), stopped: make(chan struct{})}
	go d.run()
	return d, nil
}

// DiskStats are a disk tier's counters.
type DiskStats struct {
	Hits, Misses int64
	Bytes        int64 // held now, as far as this process knows
	Removed      int64 // files removed to keep the bound, or found damaged
}

// Stats returns the counters.
func (d *Disk) Stats() DiskStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return DiskStats{Hits: d.hits, Misses: d.misses, Bytes: d.used, Removed: d.removed}
}

// path names the file of a page: a directory per LTX file (by name and
// checksum), a file per page.
func (d *Disk) path(k Key) string {
	f := k.File
	return filepath.Join(d.dir,
		fmt.Sprintf("%d-%s-%016x", f.Level, ltx.FormatFilename(f.MinTXID, f.MaxTXID), uint64(f.Checksum)),
		strconv.FormatUint(uint64(k.Pgno), 10)+".page")
}

// has reports whether a file holds the page of k (without reading it).
func (d *Disk) has(k Key) bool {
	_, err := os.Stat(d.path(k))
	return err == nil
}

// get returns the page of k if a file holds it, whole and undamaged, with
// pageSize bytes.
func (d *Disk) get(k Key, pageSize uint32) ([]byte, bool) {
	path := d.path(k)
	b, err := os.ReadFile(path)
	if err != nil {
		d.mu.Lock()
		d.misses++
		d.mu.Unlock()
		return nil, false
	}
	page, ok := decodeDiskPage(k, b)
	if !ok || len(page) != int(pageSize) {
		// Torn by a crash, or damaged: never served.
		d.remove(path)
		d.mu.Lock()
		d.misses++
		d.mu.Unlock()
		return nil, false
	}
	d.mu.Lock()
	d.hits++
	if _, known := d.lru.Get(path); !known {
		d.lru.Add(path, int64(len(b))) // found at start (or by another process): now in use
		if !d.forgetFound(path) {
			d.used += int64(len(b))
		}
	}
	d.mu.Unlock()
	return page, true
}

// put queues a page to be written; a full queue drops it (the tier is an
// optimization, never a reason to wait).
func (d *Disk) put(k Key, page []byte) { d.enqueue(diskWrite{key: k, page: page}) }

func (d *Disk) enqueue(w diskWrite) {
	select {
	case <-d.done:
	case d.queue <- w:
	default:
	}
}

// The disk tier also keeps immutable objects of the replica (hints, whose
// name says their content: see index.ObjectCache), so that a reader
// started again opens without reading them; they count against the same
// bound. Their own checks (a hint's CRC) are the reader's: a damaged one
// is removed by the caller.

// objectPath names the file of an object.
func (d *Disk) objectPath(name string) string {
	return filepath.Join(d.dir, "objects", strings.ReplaceAll(name, "/", "_")+".obj")
}

// GetObject returns an object kept by PutObject.
func (d *Disk) GetObject(name string) ([]byte, bool) {
	path := d.objectPath(name)
	b, err := os.ReadFile(path)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.misses++
		return nil, false
	}
	d.hits++
	if _, known := d.lru.Get(path); !known {
		d.lru.Add(path, int64(len(b)))
		if !d.forgetFound(path) {
			d.used += int64(len(b))
		}
	}
	return b, true
}

// PutObject queues an object to be kept (see GetObject).
func (d *Disk) PutObject(name string, b []byte) { d.enqueue(diskWrite{object: name, page: b}) }

// RemoveObject removes a kept object (one found damaged).
func (d *Disk) RemoveObject(name string) { d.remove(d.objectPath(name)) }

// remove removes a file of the tier and stops counting it.
func (d *Disk) remove(path string) {
	os.Remove(path)
	d.mu.Lock()
	defer d.mu.Unlock()
	if size, known := d.lru.Peek(path); known {
		d.lru.Remove(path)
		d.used -= size
	} else if size, found := d.isFound[path]; found {
		d.forgetFound(path)
		d.used -= size
	}
	d.removed++
}

// Close writes the pages queued and stops. Pages are still read after
// Close; pages put after it are dropped.
func (d *Disk) Close() {
	d.closed.Do(func() { close(d.done) })
	<-d.stopped
}

// run looks at the files found at start, then writes queued pages until
// Close.
func (d *Disk) run() {
	defer close(d.stopped)
	d.scan()
	for {
		select {
		case <-d.done:
			for { // what was queued before Close is written
				select {
				case w := <-d.queue:
					d.write(w)
				default:
					return
				}
			}
		case w := <-d.queue:
			d.write(w)
		}
	}
}

// scan records the page files under the directory, oldest first, and
// removes leftover temp files.
func (d *Disk) scan() {
	var found []diskEntry
	filepath.WalkDir(d.dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		select {
		case <-d.done:
			return filepath.SkipAll
		default:
		}
		if strings.HasSuffix(path, ".tmp") {
			os.Remove(path) // a write cut short by a crash
			return nil
		}
		if !strings.HasSuffix(path, ".page") && !strings.HasSuffix(path, ".obj") {
			return nil
		}
		if info, err := e.Info(); err == nil {
			found = append(found, diskEntry{path: path, size: info.Size(), mod: info.ModTime()})
		}
		return nil
	})
	slices.SortFunc(found, func(a, b diskEntry) int { return a.mod.Compare(b.mod) })
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range found {
		if !d.lru.Contains(e.path) {
			d.found = append(d.found, e)
			d.isFound[e.path] = e.size
			d.used += e.size
		}
	}
	d.evict()
}

// write stores a page or an object: a temp file renamed into place, so
// that a reader sees a whole file or none.
func (d *Disk) write(w diskWrite) {
	path := d.path(w.key)
	if w.object != "" {
		path = d.objectPath(w.object)
	}
	d.mu.Lock()
	known := d.lru.Contains(path)
	d.mu.Unlock()
	if known {
		return
	}
	b := w.page
	if w.object == "" {
		b = encodeDiskPage(w.key, w.page)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return
	}
	tmp := path + "." + strconv.FormatInt(time.Now().UnixNano(), 36) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if size, ok := d.isFound[path]; ok {
		d.forgetFound(path)
		d.used -= size // replaced a file found at start
	}
	if !d.lru.Contains(path) {
		d.lru.Add(path, int64(len(b)))
		d.used += int64(len(b))
	}
	d.evict()
}

// forgetFound drops path from the files found at start, reporting whether
// it was there (its bytes are then still counted in used). Under mu.
func (d *Disk) forgetFound(path string) bool {
	if _, ok := d.isFound[path]; !ok {
		return false
	}
	delete(d.isFound, path)
	return true
}

// evict removes files until the bound holds: those found at start first,
// oldest first, then the least recently used. Under mu.
func (d *Disk) evict() {
	for d.used > d.max {
		var path string
		var size int64
		if len(d.found) > 0 {
			e := d.found[0]
			d.found = d.found[1:]
			if _, ok := d.isFound[e.path]; !ok {
				continue // in use since: in lru
			}
			delete(d.isFound, e.path)
			path, size = e.path, e.size
		} else if p, s, ok := d.lru.RemoveOldest(); ok {
			path, size = p, s
		} else {
			return
		}
		os.Remove(path)
		d.used -= size
		d.removed++
	}
}

func encodeDiskPage(k Key, page []byte) []byte {
	b := make([]byte, diskHeaderSize+len(page))
	n := copy(b, diskMagic)
	binary.BigEndian.PutUint32(b[n:], uint32(k.File.Level))
	binary.BigEndian.PutUint64(b[n+4:], uint64(k.File.MinTXID))
	binary.BigEndian.PutUint64(b[n+12:], uint64(k.File.MaxTXID))
	binary.BigEndian.PutUint64(b[n+20:], uint64(k.File.Checksum))
	binary.BigEndian.PutUint32(b[n+28:], k.Pgno)
	binary.BigEndian.PutUint32(b[n+32:], uint32(len(page)))
	copy(b[diskHeaderSize:], page)
	sum := crc32.Update(crc32.Checksum(b[:n+36], castagnoli), castagnoli, page)
	binary.BigEndian.PutUint32(b[n+36:], sum)
	return b
}

// decodeDiskPage checks a page file against the key it was read for.
func decodeDiskPage(k Key, b []byte) ([]byte, bool) {
	if len(b) < diskHeaderSize || string(b[:len(diskMagic)]) != diskMagic {
		return nil, false
	}
	n := len(diskMagic)
	if binary.BigEndian.Uint32(b[n:]) != uint32(k.File.Level) ||
		binary.BigEndian.Uint64(b[n+4:]) != uint64(k.File.MinTXID) ||
		binary.BigEndian.Uint64(b[n+12:]) != uint64(k.File.MaxTXID) ||
		binary.BigEndian.Uint64(b[n+20:]) != uint64(k.File.Checksum) ||
		binary.BigEndian.Uint32(b[n+28:]) != k.Pgno ||
		int(binary.BigEndian.Uint32(b[n+32:])) != len(b)-diskHeaderSize {
		return nil, false
	}
	page := b[diskHeaderSize:]
	if crc32.Update(crc32.Checksum(b[:n+36], castagnoli), castagnoli, page) != binary.BigEndian.Uint32(b[n+36:]) {
		return nil, false
	}
	return page, true
}
