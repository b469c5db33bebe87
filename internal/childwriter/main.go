package childwriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	_ "github.com/ltxvfs/ltxvfs/storage/s3" // s3:// replicas
	"github.com/ltxvfs/ltxvfs/writer"
)

// stopTimeout bounds the final sync of a child stopped with SIGTERM.
const stopTimeout = 30 * time.Second

// Main runs the child writer and exits when this process is one (its
// environment holds a Config); otherwise it returns at once. Call it
// first thing in TestMain.
func Main() {
	s, ok := os.LookupEnv(envConfig)
	if !ok {
		return
	}
	os.Exit(run(s))
}

// run is the child: it prints "starting", starts the writer, prints
// "ready", and runs until the writer stops by itself (exit 1, its error
// in one line on standard error, as ltx-writer replicate prints it) or
// SIGTERM (a final sync; exit 0 unless it fails).
func run(s string) int {
	fmt.Println("starting")
	cfg, err := decode(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child writer:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	client, err := storage.Open(ctx, cfg.Replica)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child writer:", err)
		return 2
	}
	if cfg.LeaseDir != "" {
		client = leaseElsewhere{Client: client, leases: file.New(cfg.LeaseDir)}
	}
	if cfg.Record {
		client = &recorder{Client: client}
	}
	opts := cfg.Options
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	r, err := writer.New(cfg.DB, client, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child writer:", err)
		return 2
	}
	if err := start(ctx, r, cfg.WaitLease); err != nil {
		fmt.Fprintf(os.Stderr, "child writer: %s: %v\n", r.Path(), err)
		return 1
	}
	fmt.Println("ready")
	select {
	case <-r.Done():
		fmt.Fprintf(os.Stderr, "child writer stopped: %s: %v\n", r.Path(), r.Err())
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := r.Close(sctx); err != nil {
		fmt.Fprintf(os.Stderr, "child writer: close %s: %v\n", r.Path(), err)
		return 1
	}
	return 0
}

// start starts r, trying again while another writer holds the lease, for
// up to wait.
func start(ctx context.Context, r *writer.Replicator, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := r.Start(ctx)
		if !errors.Is(err, lease.ErrHeld) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}
