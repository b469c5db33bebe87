package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
)

func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }

// TestQuickRunS3: the harness against an S3 replica, as an operator runs
// it with -replica (versitygw on loopback, credentials from the standard
// chain): the replica has its history, the reads and the restore are right,
// no credential shows, and the harness removes its LTX files afterwards.
func TestQuickRunS3(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and replicates a 16 MiB database")
	}
	srv := s3test.Shared(t)
	rep := srv.NewReplica(t)
	srv.Setenv(t)

	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "bench.json")
	var stdout, stderr bytes.Buffer
	httpArgs := serveHTTP(t)
	args := append([]string{"-quick", "-latency", "1ms", "-scan-timeout", "10m", "-dir", dir, "-replica", rep.URL, "-json", jsonPath}, httpArgs...)
	code := run(t.Context(), args, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d\nstderr:\n%s", code, stderr.String())
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	s := res.Setup
	if !strings.HasPrefix(s.Replica, "s3://"+rep.Bucket+"/"+rep.Prefix) {
		t.Errorf("setup names the replica %q, want the S3 URL", s.Replica)
	}
	for _, level := range []string{"L0", "L1", "L2", "L9"} {
		if s.FilesByLevel[level] == 0 {
			t.Errorf("the S3 replica has no %s file: %v", level, s.FilesByLevel)
		}
	}
	if res.ColdOpen.Requests <= 0 || res.RowidLookup.First.Requests <= 0 || res.Warm.LtxRequests != 0 {
		t.Errorf("cold open %d requests, first lookup %d, warm %d: want cold > 0, warm 0", res.ColdOpen.Requests, res.RowidLookup.First.Requests, res.Warm.LtxRequests)
	}
	if !res.FullScan.Complete || res.FullScan.Rows != s.Rows {
		t.Errorf("full scan: %d of %d rows (complete %v)", res.FullScan.Rows, s.Rows, res.FullScan.Complete)
	}
	if !res.Restore.MatchesSource || res.Restore.TXID != s.LatestTXID {
		t.Errorf("restore: TXID %d (latest %d), matches the primary: %v", res.Restore.TXID, s.LatestTXID, res.Restore.MatchesSource)
	}
	// nginx served a mirror of the S3 replica, which the writer filled as
	// it wrote the replica: the same files, read over HTTP.
	if len(httpArgs) > 0 {
		h := res.HTTP
		if h == nil || h.ColdOpen.Requests == 0 || !h.FullScan.Complete || h.FullScan.Rows != s.Rows || h.Lag.Commits != 4 || h.Follow.Lists != 0 || h.Follow.ObjectGets+h.Follow.NotModified == 0 {
			t.Errorf("http beside S3: %+v", h)
		}
	}
	for _, out := range []string{stdout.String(), stderr.String(), string(data)} {
		if strings.Contains(out, s3test.SecretKey) {
			t.Fatal("the secret key is in the harness's output")
		}
	}

	// The harness's LTX files (and hints) are gone from the prefix.
	ctx := context.Background()
	for _, level := range []int{0, 1, 2, 3, storage.SnapshotLevel, storage.LegacyHintLevel} {
		infos, err := storage.ListLevel(ctx, rep.Client, level, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 0 {
			t.Errorf("level %d still holds %d files after the run", level, len(infos))
		}
	}
	if objs, err := rep.Client.ListObjects(ctx, manifest.HintDir); err != nil || len(objs) != 0 {
		t.Errorf("%d hints left after the run (%v)", len(objs), err)
	}
}
