package writer_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	_ "github.com/ltxvfs/ltxvfs/storage/s3"
	"github.com/ltxvfs/ltxvfs/writer"
)

// TestSecretNeverShown: a writer and a restore against an S3 server that
// refuses the credentials in the environment fail, and the secret key
// appears in no error, no log line (debug included) and no label value of
// the writer's metrics.
func TestSecretNeverShown(t *testing.T) {
	const secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_REGION", s3test.Region)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	client, err := storage.Open(ctx, srv.URL(bucket, "app"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insert(t, app, 50)

	var errs []error
	opts := testOpts()
	opts.Logger, opts.Registerer = logger, reg
	r, err := writer.New(path, client, opts)
	if err != nil {
		t.Fatal(err)
	}
	errs = append(errs, r.Start(ctx))
	errs = append(errs, r.Sync(ctx))
	_, err = r.Snapshot(ctx)
	errs = append(errs, err)
	errs = append(errs, r.Close(ctx))
	_, err = restore.Run(ctx, client, filepath.Join(t.TempDir(), "restored.db"), restore.Options{})
	errs = append(errs, err)

	failed := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		failed++
		if strings.Contains(err.Error(), secret) {
			t.Errorf("an error shows the secret: %v", err)
		}
	}
	if failed == 0 {
		t.Fatal("nothing failed: the server took the credentials, and the check checks nothing")
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the logs show the secret:\n%s", logs.String())
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				labels++
				if strings.Contains(lp.GetValue(), secret) {
					t.Errorf("metric %s label %s shows the secret", mf.GetName(), lp.GetName())
				}
			}
		}
	}
	if labels == 0 {
		t.Fatal("no metric label to check")
	}
	t.Logf("%d errors, %d log bytes, %d label values checked", failed, logs.Len(), labels)
}
