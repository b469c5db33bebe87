package reliability

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/ltxvfs/ltxvfs/vfs"
	"github.com/ltxvfs/ltxvfs/writer"
)

// readFaults are the faults for readers: 10% errors, slow
// responses, and bodies cut part-way, with an error or as if cleanly.
var readFaults = wrap.Behaviour{
	ErrorRate:    0.10,
	SlowRate:     0.10,
	SlowDelay:    20 * time.Millisecond,
	TruncateRate: 0.05,
	ShortRate:    0.05,
}

// history is which transaction of the model each synced TXID holds, as
// the writer's Sync returned it.
type history struct {
	m  *model
	mu sync.Mutex
	at map[ltx.TXID]int64
}

func newHistory(m *model) *history { return &history{m: m, at: map[ltx.TXID]int64{}} }

func (h *history) record(txid ltx.TXID, k int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.at[txid] = k
}

// bounds are the transactions TXID txid may hold: at least what the
// nearest recorded TXID at or below it held, at most what the nearest at
// or above it held (or everything committed). The TXIDs between two syncs
// are the writer's own checkpoints: same rows, or the next sync's.
func (h *history) bounds(txid ltx.TXID) (lo, hi int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hi = -1
	var below, above ltx.TXID
	for t, k := range h.at {
		if t <= txid && t >= below {
			below, lo = t, k
		}
		if t >= txid && (above == 0 || t < above) {
			above, hi = t, k
		}
	}
	if hi < 0 {
		hi = h.m.committed()
	}
	return lo, hi
}

// pick returns a recorded TXID at random.
func (h *history) pick(rng *rand.Rand) ltx.TXID {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := rng.IntN(len(h.at))
	for t := range h.at {
		if i == 0 {
			return t
		}
		i--
	}
	return 0
}

// checkRead compares what a read at txid returned with the model.
func (h *history) checkRead(txid ltx.TXID, k int64, fp fingerprint) error {
	if err := h.m.check(k, fp); err != nil {
		return fmt.Errorf("TXID %s %w", txid, err)
	}
	if lo, hi := h.bounds(txid); k < lo || k > hi {
		return fmt.Errorf("TXID %s holds transaction %d; it was synced holding %d..%d", txid, k, lo, hi)
	}
	return nil
}

// primary is the source database and its writer, driven by hand: each
// step commits one transaction of the model and syncs.
type primary struct {
	app *sql.DB
	m   *model
	h   *history
	r   *writer.Replicator
}

func newPrimary(t *testing.T, seed uint64, client storage.Client) *primary {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	t.Cleanup(func() { app.Close() })
	m := newModel(seed)
	r, err := writer.New(path, client, writer.Options{
		SyncInterval:        -1,
		SnapshotInterval:    -1,
		CompactionIntervals: []time.Duration{-1, -1},
		MinCheckpointPages:  30,
		CheckpointInterval:  -1,
		BusyTimeout:         5 * time.Second,
		MaxRetryInterval:    100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return &primary{app: app, m: m, h: newHistory(m), r: r}
}

// step commits the next transaction and syncs it; a failed sync leaves
// it for the next one.
func (p *primary) step(ctx context.Context) error {
	k := p.m.committed() + 1
	if err := p.m.runTxn(ctx, p.app, k); err != nil {
		return err
	}
	return p.sync(ctx)
}

func (p *primary) sync(ctx context.Context) error {
	k := p.m.committed()
	if err := p.r.Sync(ctx); err != nil {
		return err
	}
	p.h.record(p.r.TXID(), k)
	return nil
}

// maintain compacts now and then and writes a snapshot; i counts steps.
func (p *primary) maintain(ctx context.Context, i int) error {
	var err error
	switch {
	case i%25 == 24:
		_, err = p.r.Snapshot(ctx)
	case i%16 == 15:
		_, err = p.r.Compact(ctx, 2)
	case i%4 == 3:
		_, err = p.r.Compact(ctx, 1)
	}
	return err
}

// faultCounts says how many faults of each kind f injected.
func faultCounts(c wrap.FaultCounts) string {
	return fmt.Sprintf("%d in all: %d errors, %d ambiguous, %d slow, %d truncated with an error, %d cut short as if clean",
		c.Total(), c.Errors, c.Ambiguous, c.Slow, c.Truncated, c.Short)
}

// TestReadersUnderFaults reads a replica through storage that fails 10% of
// requests, answers some slowly and cuts bodies short, with and without an
// error, while the writer keeps adding to it: following and pinned
// connections must return the rows the source held at the TXID they report
// (PRAGMA ltx_txid), or an error, never other rows. Once the faults stop,
// the followers catch up.
func TestReadersUnderFaults(t *testing.T) {
	seed := testSeed(t)
	ctx := context.Background()
	replicaDir := filepath.Join(t.TempDir(), "replica")
	client := file.New(replicaDir)
	p := newPrimary(t, seed, client)
	for i := range 40 {
		if err := p.step(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.maintain(ctx, i); err != nil {
			t.Fatal(err)
		}
	}

	faulty := wrap.NewFaulty(client, wrap.FaultyConfig{Seed: seed, List: readFaults, Open: readFaults})
	name := fmt.Sprintf("faulty-%d.db", seed)
	// A small cache: reads keep going back to storage.
	if err := vfs.Attach(name, vfs.Options{Client: faulty, Poll: 30 * time.Millisecond, CacheBytes: 512 << 10}); err != nil {
		t.Fatal(err)
	}
	defer vfs.Detach(name)
	db, err := sql.Open("sqlite3", "file:"+url.PathEscape(name)+"?vfs=ltx")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var (
		reads, wrong atomic.Int64
		errs         errorKinds
		wrongErrs    = make(chan error, 10)
		writerErr    = make(chan error, 1)
	)
	fail := func(err error) {
		wrong.Add(1)
		select {
		case wrongErrs <- err:
		default:
		}
	}
	// The writer goes on, through clean storage.
	wg.Go(func() {
		for i := 40; runCtx.Err() == nil; i++ {
			if err := p.step(ctx); err != nil {
				writerErr <- err
				return
			}
			if err := p.maintain(ctx, i); err != nil {
				writerErr <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	const followers, pinned = 4, 4
	lastSeen := make([]atomic.Uint64, followers)
	for g := range followers + pinned {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for runCtx.Err() == nil {
				var pin ltx.TXID
				if g >= followers {
					pin = p.h.pick(rng)
				}
				txid, k, fp, err := faultyRead(runCtx, db, pin)
				if err != nil {
					if runCtx.Err() == nil {
						errs.add(err)
						if !clearFault(err) {
							fail(fmt.Errorf("a read failed without saying why: %w", err))
						}
					}
					continue
				}
				reads.Add(1)
				if pin != 0 && txid != pin {
					fail(fmt.Errorf("a connection pinned at TXID %s read TXID %s", pin, txid))
				} else if err := p.h.checkRead(txid, k, fp); err != nil {
					fail(err)
				}
				if g < followers {
					lastSeen[g].Store(uint64(txid))
				}
			}
		})
	}
	time.Sleep(*faultDuration)
	for deadline := time.Now().Add(time.Minute); !everyKind(faulty.Injected(), false); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a kind of fault was still never injected after a minute: %+v", faulty.Injected())
		}
	}
	stop()
	wg.Wait()
	select {
	case err := <-writerErr:
		t.Fatalf("writer: %v", err)
	default:
	}
	injected := faulty.Injected()
	close(wrongErrs)
	for err := range wrongErrs {
		t.Errorf("wrong rows: %v", err)
	}

	// The faults stop: a following connection reads the newest TXID.
	faulty.SetFaults(false)
	newest := p.r.TXID()
	deadline := time.Now().Add(30 * time.Second)
	for {
		txid, k, fp, err := faultyRead(ctx, db, 0)
		if err == nil {
			if err := p.h.checkRead(txid, k, fp); err != nil {
				t.Fatalf("after the faults: %v", err)
			}
			if txid >= newest {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after the faults stopped, the followers read TXID %s (err %v); the replica is at %s", txid, err, newest)
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Logf("%d reads returned rows, all correct; %d failed with an error; %d transactions, newest TXID %s", reads.Load(), errs.total(), p.m.committed(), newest)
	t.Logf("faults injected: %s", faultCounts(injected))
	t.Logf("read errors by kind:\n%s", errs.String())
	if reads.Load() == 0 {
		t.Error("no read succeeded under faults")
	}
}

// clearFault reports whether a read error carries its storage cause (the
// injected status, the cut body) rather than SQLite's verdict on bytes it
// was given: "malformed" or "not a database" would mean that damaged bytes
// reached SQLite, which is one step from wrong rows.
func clearFault(err error) bool {
	msg := err.Error()
	for _, bad := range []string{"malformed", "not a database", "corrupt"} {
		if strings.Contains(msg, bad) {
			return false
		}
	}
	return strings.Contains(msg, "injected") || strings.Contains(msg, "unexpected EOF")
}

// faultyRead reads the model's state through the VFS in one read
// transaction, pinned at pin (0: following), and the TXID it was read at.
func faultyRead(ctx context.Context, db *sql.DB, pin ltx.TXID) (ltx.TXID, int64, fingerprint, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, 0, fingerprint{}, err
	}
	defer conn.Close()
	target := "latest"
	if pin != 0 {
		target = strconv.FormatUint(uint64(pin), 10)
	}
	var got string
	if err := conn.QueryRowContext(ctx, "PRAGMA ltx_txid = "+target).Scan(&got); err != nil {
		return 0, 0, fingerprint{}, fmt.Errorf("PRAGMA ltx_txid = %s: %w", target, err)
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, 0, fingerprint{}, err
	}
	defer tx.Rollback()
	k, fp, err := readState(ctx, tx)
	if err != nil {
		return 0, 0, fingerprint{}, err
	}
	// After the reads: the transaction's TXID is fixed by its first read.
	if err := tx.QueryRowContext(ctx, "PRAGMA ltx_txid").Scan(&got); err != nil {
		return 0, 0, fingerprint{}, fmt.Errorf("PRAGMA ltx_txid: %w", err)
	}
	n, err := strconv.ParseUint(got, 10, 64)
	if err != nil {
		return 0, 0, fingerprint{}, fmt.Errorf("PRAGMA ltx_txid = %q: %w", got, err)
	}
	return ltx.TXID(n), k, fp, tx.Commit()
}

// TestWriterUnderFaults replicates through storage that fails requests,
// reports some writes failed that landed, cuts uploads and bodies short
// and answers slowly: no file is ever visible partly written or damaged,
// every TXID holds the source's rows after some synced transaction, and
// once the faults stop the writer catches up with everything.
func TestWriterUnderFaults(t *testing.T) {
	seed := testSeed(t)
	ctx := context.Background()
	replicaDir := filepath.Join(t.TempDir(), "replica")
	client := file.New(replicaDir)
	writeFaults := wrap.Behaviour{ErrorRate: 0.10, AmbiguousRate: 0.05, TruncateRate: 0.10, SlowRate: 0.10, SlowDelay: 20 * time.Millisecond}
	// The writer's reads (compaction inputs, whole files) are fewer than
	// a reader's: cut more of them.
	openFaults := readFaults
	openFaults.TruncateRate, openFaults.ShortRate = 0.10, 0.15
	faulty := wrap.NewFaulty(client, wrap.FaultyConfig{Seed: seed, List: readFaults, Open: openFaults, Write: writeFaults, Delete: writeFaults})
	p := newPrimary(t, seed, faulty)

	// Everything that ever becomes visible is read whole and verified,
	// through clean storage.
	checkCtx, stopCheck := context.WithCancel(ctx)
	var visible sync.Map // file name and size -> verified
	var damaged []string
	var verified atomic.Int64
	var checkWG sync.WaitGroup
	checkWG.Go(func() {
		for {
			damaged = append(damaged, verifyVisible(ctx, client, &visible, &verified)...)
			select {
			case <-checkCtx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})

	var syncErrs, maintErrs errorKinds
	start := time.Now()
	for i := 0; time.Since(start) < *faultDuration || !everyKind(faulty.Injected(), true); i++ {
		if time.Since(start) > time.Minute {
			t.Fatalf("a kind of fault was still never injected after a minute: %+v", faulty.Injected())
		}
		if err := p.step(ctx); err != nil {
			if errors.Is(err, writer.ErrReplicaConflict) {
				t.Fatalf("the writer took its own retried upload for another writer's: %v", err)
			}
			syncErrs.add(err)
		}
		if err := p.maintain(ctx, i); err != nil {
			maintErrs.add(err)
		}
	}
	injected := faulty.Injected()

	// The faults stop: the writer catches up.
	faulty.SetFaults(false)
	if err := p.sync(ctx); err != nil {
		t.Fatalf("first sync after the faults stopped: %v", err)
	}
	if _, err := p.r.Compact(ctx, 1); err != nil {
		t.Fatalf("compaction after the faults stopped: %v", err)
	}
	stopCheck()
	checkWG.Wait()
	damaged = append(damaged, verifyVisible(ctx, client, &visible, &verified)...)
	for _, bad := range damaged {
		t.Errorf("a damaged file was visible: %s", bad)
	}

	// Every TXID, read through the VFS on clean storage.
	l0, err := storage.ListLevel(ctx, client, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range l0 {
		if f.MinTXID != ltx.TXID(i+1) || f.MaxTXID != ltx.TXID(i+1) {
			t.Fatalf("L0 holds %s where TXID %d was expected: a gap or a duplicate", ltx.FormatFilename(f.MinTXID, f.MaxTXID), i+1)
		}
	}
	conn := openPinned(t, replicaDir)
	var lastK int64
	for txid := ltx.TXID(1); txid <= p.r.TXID(); txid++ {
		k, fp, err := readPinned(ctx, conn, txid)
		if err != nil {
			t.Fatalf("read TXID %s: %v", txid, err)
		}
		if err := p.h.checkRead(txid, k, fp); err != nil {
			t.Fatal(err)
		}
		if k < lastK {
			t.Fatalf("TXID %s holds transaction %d, the TXID before %d", txid, k, lastK)
		}
		lastK = k
	}
	if lastK != p.m.committed() {
		t.Fatalf("the newest TXID holds transaction %d; %d were committed", lastK, p.m.committed())
	}
	checkRestoreWhole(t, ctx, client, p.m)

	t.Logf("%d transactions, %d TXIDs; %d files verified whole as they became visible", p.m.committed(), p.r.TXID(), verified.Load())
	t.Logf("faults injected: %s", faultCounts(injected))
	t.Logf("failed syncs (%d):\n%s", syncErrs.total(), syncErrs.String())
	t.Logf("failed compactions and snapshots (%d):\n%s", maintErrs.total(), maintErrs.String())
}

// everyKind reports whether every kind of fault was injected (ambiguous
// answers only matter to writes).
func everyKind(c wrap.FaultCounts, writes bool) bool {
	return c.Errors > 0 && c.Slow > 0 && c.Truncated > 0 && c.Short > 0 && (!writes || c.Ambiguous > 0)
}

// verifyVisible reads every file of the replica not verified yet, whole,
// and checks it (its page index and checksums); it returns the damaged.
func verifyVisible(ctx context.Context, c storage.Client, seen *sync.Map, n *atomic.Int64) []string {
	var bad []string
	for level := 0; level <= storage.SnapshotLevel; level++ {
		infos, err := storage.ListLevel(ctx, c, level, 0, false)
		if err != nil {
			return append(bad, fmt.Sprintf("list L%d: %v", level, err))
		}
		for _, f := range infos {
			key := fmt.Sprintf("%s/%d/%d", storage.FileName(f.Level, f.MinTXID, f.MaxTXID), f.Size, f.CreatedAt.UnixNano())
			if _, ok := seen.Load(key); ok {
				continue
			}
			seen.Store(key, true)
			rc, err := c.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, 0, 0)
			if errors.Is(err, os.ErrNotExist) {
				continue // retention got there first
			}
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", key, err))
				continue
			}
			err = ltx.NewDecoder(rc).Verify()
			rc.Close()
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", key, err))
				continue
			}
			n.Add(1)
		}
	}
	return bad
}
