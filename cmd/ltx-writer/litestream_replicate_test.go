package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
)

// replicateUntil runs `ltx-writer args...` in the background, calls during
// once it is replicating, then interrupts it as SIGINT does and returns
// its exit code.
func replicateUntil(t *testing.T, args []string, stdout, stderr *syncBuffer, during func()) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, stdout, stderr) }()
	during()
	cancel()
	select {
	case code := <-done:
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("replicate did not stop")
		return -1
	}
}

// waitFor polls out until re matches, for at most 10s, and returns the
// first group.
func waitFor(t *testing.T, out *syncBuffer, re *regexp.Regexp) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("%s never appeared in:\n%s", re, out.String())
	return ""
}

// TestLitestreamReplicateFile: `ltx-writer replicate` with no flags reads
// the Litestream config at the default path and replicates to its file
// replica, with Litestream's levels, logging and warnings applied; the
// replica restores to the same rows.
func TestLitestreamReplicateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	replica := filepath.Join(dir, "replica")
	db := openDB(t, path)
	addRows(t, db, 20)
	cfg := filepath.Join(dir, "litestream.yml")
	if err := os.WriteFile(cfg, []byte(`# A Litestream config, as Litestream reads it.
sync-interval: 10ms
levels:
  - interval: 50ms
snapshot:
  interval: 1h
l0-retention: 0s
logging:
  level: debug
  stderr: true
dbs:
  - path: `+path+`
    monitor-interval: 1s
    replica:
      type: file
      path: `+replica+`
`), 0o644); err != nil {
		t.Fatal(err)
	}
	old := defaultConfigPath
	defaultConfigPath = cfg
	t.Cleanup(func() { defaultConfigPath = old })

	var stdout, stderr syncBuffer
	code := replicateUntil(t, []string{"replicate"}, &stdout, &stderr, func() {
		waitFor(t, &stderr, regexp.MustCompile(`(level=DEBUG)`))
		for i := 0; i < 4; i++ {
			addRows(t, db, 10)
			time.Sleep(60 * time.Millisecond)
		}
	})
	if code != 0 {
		t.Fatalf("replicate exited %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `msg="config key ignored" config=`+cfg+` line=13 key=dbs[0].monitor-interval`) {
		t.Errorf("no warning for monitor-interval in the log:\n%s", stderr.String())
	}
	if stdout.String() != "" {
		t.Errorf("logged on stdout although logging.stderr is set:\n%s", stdout.String())
	}
	out := filepath.Join(dir, "restored.db")
	if code, so, se := runCmd(t, "restore", "-replica", replica, "-o", out); code != 0 {
		t.Fatalf("restore exited %d: %s%s", code, so, se)
	}
	if rowsOf(t, out) != rowsOf(t, path) {
		t.Fatal("restored rows differ from the source")
	}
	l1, err := storage.ListLevel(context.Background(), file.New(replica), 1, 0, false)
	if err != nil || len(l1) == 0 {
		t.Fatalf("no L1 file (levels: [50ms]): %v", err)
	}
}

// TestLitestreamReplicateS3: `replicate -config` with a Litestream config
// replicates to S3 (versitygw) with the credentials of the config, which
// the S3 client gets in code: the standard AWS chain holds wrong ones.
// The replica restores; no credential shows in the output or the metrics,
// nor when the server refuses a wrong secret.
func TestLitestreamReplicateS3(t *testing.T) {
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "wrong-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-aws-credentials"))
	t.Setenv("LS_TEST_SECRET", s3test.SecretKey)
	path := filepath.Join(dir, "app.db")
	db := openDB(t, path)
	addRows(t, db, 20)
	config := func(secret string) string {
		cfg := filepath.Join(dir, "litestream.yml")
		if err := os.WriteFile(cfg, []byte(`addr: 127.0.0.1:0
access-key-id: `+s3test.AccessKey+`
secret-access-key: `+secret+`
dbs:
  - path: `+path+`
    replica:
      type: s3
      bucket: `+bucket+`
      path: db
      endpoint: `+srv.Endpoint+`
      region: `+s3test.Region+`
      force-path-style: true
      sync-interval: 10ms
`), 0o644); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := config("${LS_TEST_SECRET}")

	var stdout, stderr syncBuffer
	var metrics string
	code := replicateUntil(t, []string{"replicate", "-config", cfg}, &stdout, &stderr, func() {
		// Litestream logs on stdout unless logging.stderr is set.
		url := waitFor(t, &stdout, regexp.MustCompile(`url=(http://[^ ]+/metrics)`))
		for i := 0; i < 4; i++ {
			addRows(t, db, 10)
			time.Sleep(60 * time.Millisecond)
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
	})
	if code != 0 {
		t.Fatalf("replicate exited %d: %s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(metrics, `ltx_writer_syncs_total{db="`+path+`"}`) {
		t.Errorf("the metrics (addr:) lack the database's syncs:\n%.2000s", metrics)
	}
	for what, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "metrics": metrics} {
		if strings.Contains(out, s3test.SecretKey) || strings.Contains(out, s3test.AccessKey) {
			t.Errorf("the config's credentials show in %s", what)
		}
	}

	srv.Setenv(t)
	out := filepath.Join(dir, "restored.db")
	if code, so, se := runCmd(t, "restore", "-replica", srv.URL(bucket, "db"), "-o", out); code != 0 {
		t.Fatalf("restore exited %d: %s%s", code, so, se)
	}
	if rowsOf(t, out) != rowsOf(t, path) {
		t.Fatal("restored rows differ from the source")
	}

	// A wrong secret in the config: the server refuses, and the error
	// shows neither the secret given nor the key.
	const wrong = "Wr0ngSecretFromTheConfig"
	code, so, se := runCmd(t, "replicate", "-config", config(wrong))
	if code == 0 || !strings.Contains(se, "s3://"+bucket+"/db") || !strings.Contains(se, "SignatureDoesNotMatch") {
		t.Fatalf("replicate with a wrong secret: exit %d: %s%s", code, so, se)
	}
	if strings.Contains(so+se, wrong) || strings.Contains(so+se, s3test.SecretKey) {
		t.Fatalf("the secret shows in the output:\n%s%s", so, se)
	}
}

// TestLitestreamConfigPaths: LITESTREAM_CONFIG names the config read when
// neither -config nor -db is given; a missing default is a usage error
// naming it.
func TestLitestreamConfigPaths(t *testing.T) {
	code, _, se := runCmd(t, "replicate")
	if code != 2 || !strings.Contains(se, "-db and -replica are required") || !strings.Contains(se, defaultConfigPath) {
		t.Errorf("replicate with no config at the default path: exit %d, %q", code, se)
	}
	missing := filepath.Join(t.TempDir(), "from-env.yml")
	t.Setenv("LITESTREAM_CONFIG", missing)
	code, _, se = runCmd(t, "replicate")
	if code != 1 || !strings.Contains(se, "config "+missing) {
		t.Errorf("replicate with LITESTREAM_CONFIG=%s missing: exit %d, %q", missing, code, se)
	}
}
