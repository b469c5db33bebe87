package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/writer"
)

// Each small transaction of the history updates this many random items
// and appends one.
const updatesPerTx = 4

// history is the replica's past, as the harness made it.
type history struct {
	primary *sql.DB
	repl    *writer.Replicator
	rng     *rand.Rand

	rows   int64                   // items now (ids 1..rows)
	rowsAt map[ltx.TXID]int64      // items at each TXID
	old    ltx.TXID                // the time-travel target, before the snapshot
	plan   []*ltx.FileInfo         // the latest TXID's plan
	levels map[int][]*ltx.FileInfo // by level
	hints  []storage.ObjectInfo
}

// replicate writes the replica's history with the writer, with explicit
// syncs, compactions and a snapshot, l0 small transactions per phase:
//
//	TXID 1            the whole database (the writer's first L0 file)
//	phase A           l0 L0 files; then L1 and L2 compactions of 1..A
//	phase B           l0 L0 files; then an L1 compaction of B
//	snapshot          level 9 at the end of B
//	phase C           l0 L0 files; then L1 of C and L2 of B..C
//	phase D           l0 L0 files; then L1 of D
//	phase E           l0 L0 files, left as L0
//
// so that the latest TXID's plan is the snapshot, an L2, an L1 and l0 L0
// files, and the time-travel target (the middle of B) is the first L2 and
// L0 files: every kind of file is read.
func (h *history) replicate(ctx context.Context, l0 int, prog *progress) error {
	h.rowsAt = map[ltx.TXID]int64{}
	total := 5*l0 + 1
	done := 0
	sync := func() error {
		if err := h.repl.Sync(ctx); err != nil {
			return fmt.Errorf("replicate: sync: %w", err)
		}
		h.rowsAt[h.repl.TXID()] = h.rows
		done++
		prog.update("replicating: TXID %d of %d", done, total)
		return nil
	}
	phase := func(name string) error {
		for range l0 {
			if err := h.smallTx(ctx); err != nil {
				return fmt.Errorf("replicate: phase %s: %w", name, err)
			}
			if err := sync(); err != nil {
				return err
			}
		}
		return nil
	}
	compact := func(levels ...int) error {
		for _, level := range levels {
			prog.update("replicating: compacting into L%d", level)
			if _, err := h.repl.Compact(ctx, level); err != nil {
				return fmt.Errorf("replicate: compact into L%d: %w", level, err)
			}
		}
		return nil
	}

	prog.update("replicating: the first file holds the whole database")
	if err := sync(); err != nil {
		return err
	}
	if err := phase("A"); err != nil {
		return err
	}
	if err := compact(1, 2); err != nil {
		return err
	}
	first := h.repl.TXID()
	if err := phase("B"); err != nil {
		return err
	}
	h.old = first + ltx.TXID(max(l0/2, 1))
	if err := compact(1); err != nil {
		return err
	}
	prog.update("replicating: snapshot")
	if _, err := h.repl.Snapshot(ctx); err != nil {
		return fmt.Errorf("replicate: snapshot: %w", err)
	}
	if err := phase("C"); err != nil {
		return err
	}
	if err := compact(1, 2); err != nil {
		return err
	}
	if err := phase("D"); err != nil {
		return err
	}
	if err := compact(1); err != nil {
		return err
	}
	if err := phase("E"); err != nil {
		return err
	}
	return h.describe(ctx)
}

// smallTx commits one small transaction on the primary, as an application
// would: a few updated rows and one new one.
func (h *history) smallTx(ctx context.Context) error {
	tx, err := h.primary.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	update, err := tx.PrepareContext(ctx, `UPDATE items SET payload = `+payloadSQL+` WHERE id = ?`)
	if err != nil {
		return err
	}
	defer update.Close()
	for range updatesPerTx {
		if _, err := update.ExecContext(ctx, 1+h.rng.Int64N(h.rows)); err != nil {
			return err
		}
	}
	if err := insertItem(ctx, tx, h.rows+1); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	h.rows++
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertItem appends item id as buildDatabase makes items.
func insertItem(ctx context.Context, db execer, id int64) error {
	_, err := db.ExecContext(ctx, `INSERT INTO items(id, k, customer_id, payload)
		VALUES (?1, ?2, (?1 % (SELECT max(id) FROM customers)) + 1, `+payloadSQL+`)`, id, kOf(id))
	return err
}

// describe lists the replica and plans its latest TXID.
func (h *history) describe(ctx context.Context) error {
	client := h.repl.Client()
	all, err := storage.ListAll(ctx, client, false)
	if err != nil {
		return err
	}
	h.levels = map[int][]*ltx.FileInfo{}
	for _, f := range all {
		h.levels[f.Level] = append(h.levels[f.Level], f)
	}
	// Hint objects (see package manifest) are counted, never planned with.
	if h.hints, err = client.ListObjects(ctx, manifest.HintDir); err != nil {
		return fmt.Errorf("list the hints of %s: %w", client, err)
	}
	plan, err := plan.Restore(all, 0)
	if err != nil {
		return fmt.Errorf("plan %s: %w", client, err)
	}
	h.plan = plan
	if last := plan[len(plan)-1].MaxTXID; last != h.repl.TXID() {
		return fmt.Errorf("the replica's newest restorable TXID is %s, the writer's %s", last, h.repl.TXID())
	}
	return nil
}

// planOf plans a TXID of the replica as listed by describe.
func (h *history) planOf(txid ltx.TXID) ([]*ltx.FileInfo, error) {
	var all []*ltx.FileInfo
	for _, infos := range h.levels {
		all = append(all, infos...)
	}
	return plan.Restore(all, txid)
}

// newWriter makes the replicator of the harness: explicit syncs,
// compactions and snapshots while the history is written, then background
// syncs at interval when started; nothing is ever removed. It checkpoints
// by WAL size only, never on a timer: a timed checkpoint's bookkeeping
// write would be a TXID of its own among the commits whose lag is
// measured, and could be taken for the upload of one of them.
func newWriter(path string, client storage.Client, interval time.Duration, tmp string, opts writer.Options) (*writer.Replicator, error) {
	opts.SyncInterval = interval
	opts.CompactionIntervals = []time.Duration{0, 0}
	opts.SnapshotInterval = -1
	opts.SnapshotRetention = -1
	opts.L0Retention = 100 * 365 * 24 * time.Hour
	opts.CheckpointInterval = -1
	opts.TempDir = tmp
	return writer.New(path, client, opts)
}
