package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"hash"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// restore rebuilds the latest TXID into a local file with writer.Restore,
// through the same injected latency as the readers (a client of its own,
// so that its counts are its own), and checks that every row equals the
// primary's. It returns the restored file's path.
func (b *bench) restore(ctx context.Context) (Restore, string, error) {
	faulty := wrap.NewFaulty(b.backend, wrap.Uniform(b.cfg.seed, wrap.Behaviour{FirstByte: b.cfg.latency, Bandwidth: b.cfg.bandwid}))
	counting := wrap.NewCounting(faulty)
	rec := newRecorder(counting)
	dst := filepath.Join(b.work, "restored.db")
	start := time.Now()
	res, err := restore.Run(ctx, rec, dst, restore.Options{Progress: func(done, total int64) {
		b.prog.update("restore: %s of %s pages", thousands(done), thousands(total))
	}})
	took := time.Since(start)
	if err != nil {
		return Restore{}, "", err
	}
	out := Restore{Cost: newCost(took, counting.Counts(), rec.since(0)), TXID: uint64(res.TXID), Files: len(res.Files)}
	if res.TXID != b.repl.TXID() {
		return out, dst, fmt.Errorf("restore rebuilt TXID %s, the writer is at %s", res.TXID, b.repl.TXID())
	}
	b.prog.update("restore: comparing every row with the primary")
	var want, got [32]byte
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { want, err = hashRows(gctx, b.dbPath); return err })
	g.Go(func() (err error) { got, err = hashRows(gctx, dst); return err })
	if err := g.Wait(); err != nil {
		return out, dst, err
	}
	out.MatchesSource = got == want
	if !out.MatchesSource {
		return out, dst, fmt.Errorf("the database restored at TXID %s differs from the primary", res.TXID)
	}
	return out, dst, nil
}

// hashRows is a digest of every row of both tables, in id order.
func hashRows(ctx context.Context, path string) ([32]byte, error) {
	var sum [32]byte
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return sum, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	h := sha256.New()
	for _, q := range []string{
		`SELECT id, k, customer_id, payload FROM items ORDER BY id`,
		`SELECT id, name, 0, region FROM customers ORDER BY id`,
	} {
		if err := hashQuery(ctx, db, q, h); err != nil {
			return sum, fmt.Errorf("read %s: %w", path, err)
		}
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

func hashQuery(ctx context.Context, db *sql.DB, q string, h hash.Hash) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	var id, n int64
	var a, c sql.RawBytes
	var buf [8]byte
	for rows.Next() {
		if err := rows.Scan(&id, &a, &n, &c); err != nil {
			return err
		}
		binary.LittleEndian.PutUint64(buf[:], uint64(id))
		h.Write(buf[:])
		h.Write(a)
		h.Write([]byte{0})
		binary.LittleEndian.PutUint64(buf[:], uint64(n))
		h.Write(buf[:])
		h.Write(c)
		h.Write([]byte{0})
	}
	return rows.Err()
}
