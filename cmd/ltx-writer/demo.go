package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/ctxtime"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/vfs"
	"github.com/ltxvfs/ltxvfs/writer"
)

// The demo's pace: fast enough to finish in seconds, as configured in
// production for a reader that wants to follow closely.
const (
	demoSync = 500 * time.Millisecond // the writer copies the WAL this often
	demoPoll = 250 * time.Millisecond // the reader lists the replica this often
)

// runDemo replicates a sample database to a local directory while writing
// to it, and reads it through the ltx VFS: a follower, time travel, and
// what the reads cost in storage requests.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[-dir DIR] [-rows N] [-commits N]", stderr)
	dir := fs.String("dir", "", "directory for the sample database and its replica, kept afterwards (default: a temp dir, removed)")
	rows := fs.Int("rows", 20000, "orders in the sample database")
	commits := fs.Int("commits", 5, "commits on the primary to follow")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *rows < 1 || *commits < 1 {
		return usagef("-rows and -commits must be at least 1")
	}
	work := *dir
	if work == "" {
		tmp, err := os.MkdirTemp("", "ltxvfs-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		work = tmp
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	d := &demo{out: stdout, dir: work, keep: *dir != "", log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	defer d.close()
	return d.run(ctx, *rows, *commits)
}

type demo struct {
	out  io.Writer
	dir  string
	keep bool // the directory stays after the demo
	log  *slog.Logger

	primary *sql.DB
	repl    *writer.Replicator
	reg     *prometheus.Registry
	reader  *sql.DB
	name    string // the attached VFS name
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

func (d *demo) run(ctx context.Context, rows, commits int) error {
	dbPath := filepath.Join(d.dir, "app.db")
	replicaDir := filepath.Join(d.dir, "replica")
	for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm", replicaDir} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists: give -dir an empty or new directory", p)
		}
	}
	d.printf("ltx-writer demo: replicate a live SQLite database, read it through the ltx VFS\n\n")

	// The primary: an ordinary SQLite database in WAL mode.
	start := time.Now()
	if err := d.createPrimary(ctx, dbPath, rows); err != nil {
		return err
	}
	var err error
	client := file.New(replicaDir)
	d.repl, err = writer.New(dbPath, client, writer.Options{
		SyncInterval:        demoSync,
		CompactionIntervals: []time.Duration{3 * time.Second},
		Logger:              d.log,
	})
	if err != nil {
		return err
	}
	if err := d.repl.Start(ctx); err != nil {
		return fmt.Errorf("start replicating %s: %w", dbPath, err)
	}
	if err := d.repl.Sync(ctx); err != nil {
		return fmt.Errorf("replicate %s: %w", dbPath, err)
	}
	firstTXID := d.repl.TXID()
	d.printf("  primary  %s  (%d orders, WAL mode)\n", dbPath, rows)
	d.printf("  replica  %s  (Litestream v0.5 layout, TXID %d after %s)\n", replicaDir, firstTXID, demoMS(time.Since(start)))
	d.printf("  writer   copies the WAL every %s; reader polls every %s\n\n", demoSync, demoPoll)

	// The reader: the replica bound to a name, with metrics that count
	// every storage request.
	d.reg = prometheus.NewRegistry()
	d.name = fmt.Sprintf("ltx-writer-demo-%d", os.Getpid())
	if err := vfs.Attach(d.name, vfs.Options{URL: replicaDir, Poll: demoPoll, Logger: d.log, Registerer: d.reg}); err != nil {
		return err
	}
	d.reader, err = sql.Open("sqlite3", "file:"+d.name+"?vfs=ltx")
	if err != nil {
		return err
	}
	d.reader.SetMaxOpenConns(1)

	if err := d.costs(ctx, rows); err != nil {
		return err
	}
	if err := d.follow(ctx, commits); err != nil {
		return err
	}
	if err := d.timeTravel(ctx, firstTXID); err != nil {
		return err
	}
	return d.files(ctx, client)
}

func (d *demo) createPrimary(ctx context.Context, path string, rows int) error {
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)&_pragma=synchronous(normal)")
	if err != nil {
		return err
	}
	d.primary = db
	_, err = db.ExecContext(ctx, `
		CREATE TABLE orders(
			id INTEGER PRIMARY KEY,
			customer TEXT NOT NULL,
			amount_cents INTEGER NOT NULL,
			created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ')));
		CREATE INDEX orders_customer ON orders(customer);`)
	if err == nil {
		_, err = db.ExecContext(ctx, `
			INSERT INTO orders(id, customer, amount_cents)
			SELECT value, 'customer-' || (value % 997), 100 + (value * 7919) % 50000
			FROM generate_series(1, ?)`, rows)
	}
	if err != nil {
		return fmt.Errorf("create the sample database %s: %w", path, err)
	}
	return nil
}

// requests returns the reader's storage requests so far: listings and
// ranged reads.
func (d *demo) requests() (lists, reads int) {
	mfs, _ := d.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "ltxvfs_storage_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == "list" {
					lists = int(m.GetCounter().GetValue())
				} else if l.GetName() == "op" && l.GetValue() == "read" {
					reads = int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return lists, reads
}

// measure runs f and reports the storage requests it made.
func (d *demo) measure(f func() error) (lists, reads int, took time.Duration, err error) {
	l0, r0 := d.requests()
	start := time.Now()
	err = f()
	took = time.Since(start)
	l1, r1 := d.requests()
	return l1 - l0, r1 - r0, took, err
}

// costs shows what opening, a cold query and warm queries cost.
func (d *demo) costs(ctx context.Context, rows int) error {
	id := rows*2/3 + 1
	d.printf("1. What reads cost (storage requests: listings + ranged reads)\n")
	var conn *sql.Conn
	lists, reads, took, err := d.measure(func() (err error) {
		conn, err = d.reader.Conn(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("open the replica through the VFS: %w", err)
	}
	defer conn.Close()
	d.cost("open the database", lists, reads, demoMS(took))

	const point = `SELECT customer, amount_cents FROM orders WHERE id = ?`
	var customer string
	var cents int64
	lists, reads, took, err = d.measure(func() error {
		return conn.QueryRowContext(ctx, point, id).Scan(&customer, &cents)
	})
	if err != nil {
		return err
	}
	d.cost("first point query (cold)", lists, reads, demoMS(took))

	const warm = 100
	lists, reads, took, err = d.measure(func() error {
		for i := range warm {
			if err := conn.QueryRowContext(ctx, point, max(1, id-i%3)).Scan(&customer, &cents); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.cost(fmt.Sprintf("%d warm point queries", warm), lists, reads, demoUS(took/warm)+" each")

	var n int64
	lists, reads, took, err = d.measure(func() error {
		return conn.QueryRowContext(ctx, `SELECT count(*) FROM orders WHERE customer = 'customer-42'`).Scan(&n)
	})
	if err != nil {
		return err
	}
	d.cost(fmt.Sprintf("index lookup (%d orders)", n), lists, reads, demoMS(took))
	lists, reads, took, err = d.measure(func() error {
		return conn.QueryRowContext(ctx, `SELECT count(*) FROM orders WHERE amount_cents >= 0`).Scan(&n)
	})
	if err != nil {
		return err
	}
	d.cost(fmt.Sprintf("full scan (%d orders)", n), lists, reads, demoMS(took))
	d.printf("   (the poller, while a connection follows: one conditional read of the writer's manifest per %s, no listing)\n\n", demoPoll)
	return nil
}

func (d *demo) cost(what string, lists, reads int, took string) {
	d.printf("   %-28s %3d + %-4d requests  %s\n", what, lists, reads, took)
}

// follow commits on the primary and measures how long each commit takes to
// show through the VFS.
func (d *demo) follow(ctx context.Context, commits int) error {
	d.printf("2. A follower sees new commits\n")
	var lags []time.Duration
	for i := range commits {
		// Commit at a random moment relative to the writer's and the
		// reader's ticks, as an application would.
		if err := ctxtime.Sleep(ctx, time.Duration(rand.Int64N(int64(demoSync)))); err != nil {
			return err
		}
		var id int64
		err := d.primary.QueryRowContext(ctx, `INSERT INTO orders(customer, amount_cents) VALUES (?, ?) RETURNING id`,
			fmt.Sprintf("new-customer-%d", i), 1000*(i+1)).Scan(&id)
		if err != nil {
			return fmt.Errorf("commit on the primary: %w", err)
		}
		committed := time.Now()
		var txid string
		for {
			var seen int64
			if err := d.reader.QueryRowContext(ctx, `SELECT count(*) FROM orders WHERE id = ?`, id).Scan(&seen); err != nil {
				return fmt.Errorf("read the replica: %w", err)
			}
			if seen == 1 {
				break
			}
			if time.Since(committed) > 30*time.Second {
				return fmt.Errorf("order %d committed on the primary 30s ago is still not visible through the VFS", id)
			}
			if err := ctxtime.Sleep(ctx, 5*time.Millisecond); err != nil {
				return err
			}
		}
		lag := time.Since(committed)
		lags = append(lags, lag)
		if err := d.reader.QueryRowContext(ctx, `PRAGMA ltx_txid`).Scan(&txid); err != nil {
			return err
		}
		d.printf("   order %-6d committed on the primary -> visible to the reader after %s (TXID %s)\n", id, demoMS(lag), txid)
	}
	slices.Sort(lags)
	d.printf("   median %s, worst %s (at most one sync + one poll + a round trip)\n\n", demoMS(lags[len(lags)/2]), demoMS(lags[len(lags)-1]))
	return nil
}

// timeTravel runs the same query now and at an older TXID, and compares
// both in one query through ATTACH.
func (d *demo) timeTravel(ctx context.Context, old ltx.TXID) error {
	d.printf("3. Time travel: the same query at the latest TXID and at TXID %d\n", old)
	conn, err := d.reader.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	const q = `SELECT count(*), sum(amount_cents) FROM orders`
	show := func(label string) error {
		var n, sum int64
		var txid, at string
		lists, reads, took, err := d.measure(func() error {
			if err := conn.QueryRowContext(ctx, q).Scan(&n, &sum); err != nil {
				return err
			}
			if err := conn.QueryRowContext(ctx, `PRAGMA ltx_txid`).Scan(&txid); err != nil {
				return err
			}
			return conn.QueryRowContext(ctx, `PRAGMA ltx_time`).Scan(&at)
		})
		if err != nil {
			return err
		}
		d.printf("   %-8s TXID %-4s %s  %d orders, $%d.%02d   (%d + %d requests, %s)\n", label, txid, at, n, sum/100, sum%100, lists, reads, demoMS(took))
		return nil
	}
	if err := show("latest"); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA ltx_txid = %d`, old)); err != nil {
		return fmt.Errorf("pin TXID %d: %w", old, err)
	}
	if err := show("pinned"); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA ltx_txid = latest`); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`ATTACH 'file:%s?vfs=ltx&txid=%d' AS past`, d.name, old)); err != nil {
		return fmt.Errorf("attach TXID %d: %w", old, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH past`)
	rows, err := conn.QueryContext(ctx, `
		SELECT id, customer, amount_cents FROM main.orders
		WHERE id NOT IN (SELECT id FROM past.orders) ORDER BY id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	d.printf("   orders added since TXID %d, from one query joining main and an ATTACHed past:\n", old)
	for rows.Next() {
		var id, cents int64
		var customer string
		if err := rows.Scan(&id, &customer, &cents); err != nil {
			return err
		}
		d.printf("     %-6d %-16s $%d.%02d\n", id, customer, cents/100, cents%100)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	d.printf("\n")
	return nil
}

// files lists what the writer left in the replica.
func (d *demo) files(ctx context.Context, client storage.Client) error {
	d.printf("4. The replica\n")
	all, err := storage.ListAll(ctx, client, false)
	if err != nil {
		return err
	}
	var count [storage.SnapshotLevel + 1]int
	var size [storage.SnapshotLevel + 1]int64
	for _, info := range all {
		count[info.Level]++
		size[info.Level] += info.Size
	}
	var parts []string
	for level, n := range count {
		if n > 0 {
			noun := "files"
			if n == 1 {
				noun = "file"
			}
			parts = append(parts, fmt.Sprintf("L%d: %d %s, %s", level, n, noun, demoKiB(size[level])))
		}
	}
	d.printf("   %s\n", strings.Join(parts, "; "))
	if d.keep {
		d.printf("   query it yourself: ltx-writer query -replica %s 'SELECT count(*) FROM orders'\n", filepath.Join(d.dir, "replica"))
	} else {
		d.printf("   (removing %s; keep it with -dir DIR)\n", d.dir)
	}
	return nil
}

func (d *demo) close() {
	if d.reader != nil {
		d.reader.Close()
	}
	if d.name != "" {
		vfs.Detach(d.name)
	}
	if d.repl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.repl.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Warn("close the writer", "err", err)
		}
	}
	if d.primary != nil {
		d.primary.Close()
	}
}

func demoMS(d time.Duration) string {
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

func demoUS(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func demoKiB(n int64) string { return fmt.Sprintf("%.0f KiB", float64(n)/1024) }
