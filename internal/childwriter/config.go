package childwriter

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/ltxvfs/ltxvfs/writer"
)

// envConfig carries a child's Config, as JSON.
const envConfig = "LTXVFS_CHILD_WRITER"

// Config is what a child writer does.
type Config struct {
	// DB is the database it replicates; Replica the replica's URL (a
	// directory or s3://, with the credentials of the environment).
	DB      string
	Replica string
	// Options are the writer's; their Logger and Registerer are the
	// child's own (a text log on its standard error, no metrics).
	Options writer.Options
	// LogLevel is the level of that log (zero: Info).
	LogLevel slog.Level

	// LeaseDir, for a directory replica, takes the lease in this other
	// directory: the child is a writer on another host, whose lock the
	// first writer's does not reach (a lock on a network filesystem that
	// a paused host lost).
	LeaseDir string
	// WaitLease makes the child wait up to this long for a lease another
	// writer holds, trying again until it lapses, instead of exiting.
	WaitLease time.Duration
	// Record prints a line for every LTX file the writer wrote (see
	// Child.Writes).
	Record bool
}

func (cfg Config) encode() (string, error) {
	cfg.Options.Logger, cfg.Options.Registerer = nil, nil
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("child writer config: %w", err)
	}
	return string(b), nil
}

func decode(s string) (Config, error) {
	var cfg Config
	if err := json.Unmarshal([]byte(s), &cfg); err != nil {
		return cfg, fmt.Errorf("child writer config %s: %w", envConfig, err)
	}
	return cfg, nil
}
