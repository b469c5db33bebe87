package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// describeDB renders what a database of a config maps to, for comparison
// with what Litestream's documentation says the example does.
func describeDB(t *testing.T, d databaseConfig) string {
	t.Helper()
	s := d.Path + " -> " + d.Replica
	if d.credentials != nil {
		v, err := d.credentials.Retrieve(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s += " creds=" + v.AccessKeyID + ":" + v.SecretAccessKey
	}
	for _, f := range []struct {
		name string
		v    *duration
	}{
		{"sync", d.SyncInterval}, {"snapshot", d.SnapshotInterval}, {"snapshot-retention", d.SnapshotRetention},
		{"l0", d.L0Retention}, {"checkpoint-interval", d.CheckpointInterval}, {"busy", d.busyTimeout},
	} {
		if f.v != nil {
			s += fmt.Sprintf(" %s=%s", f.name, time.Duration(*f.v))
		}
	}
	if d.CompactionIntervals != nil {
		s += " levels="
		for i, l := range d.CompactionIntervals {
			if i > 0 {
				s += ","
			}
			s += time.Duration(l).String()
		}
	}
	if d.CheckpointPages != nil {
		s += fmt.Sprintf(" checkpoint-pages=%d", *d.CheckpointPages)
	}
	if d.TruncatePages != nil {
		s += fmt.Sprintf(" truncate-pages=%d", *d.TruncatePages)
	}
	return s
}

func loadExample(t *testing.T, name string, expand bool) (*replicateConfig, error) {
	t.Helper()
	path := filepath.Join("testdata", "litestream", name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !isLitestreamConfig(b) {
		t.Fatalf("%s not taken for a Litestream config", name)
	}
	return loadConfig(path, expand)
}

// TestLitestreamDocExamples: each config of Litestream's documentation
// (testdata/litestream, copied unchanged) maps to the databases, replicas
// and settings the documentation says it gives, with the variables it
// names expanded.
func TestLitestreamDocExamples(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAenv")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env/secret")
	t.Setenv("ACCESS_KEY", "wasabi-key")
	t.Setenv("SECRET_KEY", "wasabi-secret")
	t.Setenv("B2_KEY_ID", "b2-key")
	t.Setenv("B2_APPLICATION_KEY", "b2-secret")
	const aws = " creds=AKIAxxxxxxxxxxxxxxxx:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/xxxxxxxxx"
	for _, tc := range []struct {
		file     string
		dbs      []string
		warnings []string
	}{
		{"s3-url.yml", []string{"/var/lib/db -> s3://mybkt.litestream.io/db?force-path-style=false"}, nil},
		{"s3-fields.yml", []string{"/var/lib/db -> s3://mybkt.litestream.io/db?force-path-style=false"}, nil},
		{"s3-url-credentials.yml", []string{"/var/lib/db -> s3://mybkt.litestream.io/db?force-path-style=false&region=us-east-1" + aws}, nil},
		{"s3-global-credentials.yml", []string{"/path/to/local/db -> s3://BUCKETNAME/PATHNAME?force-path-style=false" + aws}, nil},
		{"file.yml", []string{"/var/lib/db -> /backup/db"}, nil},
		{"file-type.yml", []string{"/var/lib/myapp/data.db -> /backup/litestream/data"}, nil},
		{"pid.yml", []string{fmt.Sprintf("/data/myapp.db -> /tmp/replicas/%d/myapp", os.Getpid())}, nil},
		{"global-defaults.yml", []string{
			"/db1.sqlite -> s3://bucket1/?force-path-style=false&region=us-west-2 sync=30s",
			"/db2.sqlite -> s3://bucket2/?force-path-style=false&region=us-east-1 sync=30s",
			"/db3.sqlite -> s3://bucket3/?force-path-style=false&region=eu-west-1 sync=1s",
		}, nil},
		{"global-endpoint.yml", []string{
			"/db1.sqlite -> s3://bucket1/?endpoint=https%3A%2F%2Fcustom.endpoint.com&force-path-style=true&region=us-west-2" + aws,
			"/db2.sqlite -> s3://bucket2/?endpoint=https%3A%2F%2Fcustom.endpoint.com&force-path-style=true&region=us-west-2" + aws,
		}, nil},
		{"multi-tenant.yml", []string{
			"/data/tenant1.db -> s3://backups/tenant1?force-path-style=false&region=us-west-2 creds=AKIAenv:env/secret sync=10s",
			"/data/tenant2.db -> s3://backups/tenant2?force-path-style=false&region=us-west-2 creds=AKIAenv:env/secret sync=10s",
			"/data/tenant3.db -> s3://backups/tenant3?force-path-style=false&region=us-west-2 creds=AKIAenv:env/secret sync=10s",
		}, nil},
		{"tigris.yml", []string{"/var/lib/db -> s3://mybucket/db?endpoint=https%3A%2F%2Ffly.storage.tigris.dev&force-path-style=true&region=auto"}, nil},
		{"minio-fields.yml", []string{"/var/lib/mydb.db -> s3://mybkt/mydb.db?endpoint=https%3A%2F%2Fminio.example.com%3A9000&force-path-style=true&region=us-east-1 creds=myaccesskey:mysecretkey"}, nil},
		{"minio-url.yml", []string{"/var/lib/mydb.db -> s3://mybkt/mydb.db?endpoint=https%3A%2F%2Fminio.example.com%3A9000&force-path-style=true&region=us-east-1 creds=myaccesskey:mysecretkey"}, nil},
		{"wasabi-url.yml", []string{"/path/to/db -> s3://mybucket/db?endpoint=https%3A%2F%2Fs3.us-west-1.wasabisys.com&force-path-style=true creds=wasabi-key:wasabi-secret"}, nil},
		{"backblaze.yml", []string{"/path/to/db -> s3://my-bucket/db?endpoint=https%3A%2F%2Fs3.us-west-004.backblazeb2.com&force-path-style=true&region=us-west-004 creds=b2-key:b2-secret"}, nil},
		{"database-settings.yml", []string{"/var/lib/myapp.db -> s3://mybucket/myapp?force-path-style=false sync=1s checkpoint-interval=30s busy=5s checkpoint-pages=500 truncate-pages=50000"},
			[]string{"line 6: dbs[0].meta-path", "line 7: dbs[0].monitor-interval"}},
		{"snapshot-per-db.yml", []string{"/var/lib/app.db -> s3://mybucket/app?force-path-style=false snapshot=1h0m0s snapshot-retention=24h0m0s"}, nil},
		{"l0-retention.yml", []string{"/var/lib/app.db -> s3://mybucket/app?force-path-style=false l0=10m0s"}, []string{"line 6: l0-retention-check-interval"}},
	} {
		cfg, err := loadExample(t, tc.file, true)
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		var got []string
		for _, d := range cfg.Databases {
			got = append(got, describeDB(t, d))
		}
		if strings.Join(got, "\n") != strings.Join(tc.dbs, "\n") {
			t.Errorf("%s maps to\n\t%s\nwant\n\t%s", tc.file, strings.Join(got, "\n\t"), strings.Join(tc.dbs, "\n\t"))
		}
		var warned []string
		for _, w := range cfg.warnings {
			warned = append(warned, fmt.Sprintf("line %d: %s", w.line, w.key))
		}
		if fmt.Sprint(warned) != fmt.Sprint(tc.warnings) {
			t.Errorf("%s: warnings %q, want %q", tc.file, warned, tc.warnings)
		}
	}
}

// TestLitestreamDocExamplesRefused: the documented configs that ltx-writer
// cannot honour are refused with an error naming what and where.
func TestLitestreamDocExamplesRefused(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAenv")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env/secret")
	t.Setenv("AZURE_ACCOUNT_KEY", "azure-secret")
	t.Setenv("SFTP_PASSWORD", "sftp-secret")
	_, err := loadExample(t, "env-vars.yml", true)
	if err == nil || !strings.Contains(err.Error(), "line 10 (password): environment variable ${NATS_PASSWORD} is not set") || !strings.Contains(err.Error(), "-no-expand-env") {
		t.Errorf("env-vars.yml with NATS_PASSWORD unset: %v", err)
	}
	// With -no-expand-env the variables stay as written, and the replica
	// type is what is refused, naming the database.
	_, err = loadExample(t, "env-vars.yml", false)
	if err == nil || !strings.Contains(err.Error(), `replica type "nats" is not supported`) || !strings.Contains(err.Error(), "database /var/lib/mydb.db") {
		t.Errorf("env-vars.yml with -no-expand-env: %v", err)
	}
	t.Setenv("NATS_PASSWORD", "nats-secret")
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"complete.yml", []string{"line 19: exec: not supported"}},
		{"env-vars.yml", []string{`replica type "nats" is not supported`, "line 5: database /var/lib/mydb.db"}},
		{"gcs.yml", []string{`replica type "gs" is not supported`, "database /var/lib/db"}},
		{"abs.yml", []string{`replica type "abs" is not supported`, "database /var/lib/db"}},
		{"sftp.yml", []string{`replica type "sftp" is not supported`, "database /var/lib/db"}},
		{"mixed-backends.yml", []string{`replica type "abs" is not supported`, "line 21: database /app2.sqlite"}},
		{"directory.yml", []string{"line 5: dbs[0].dir: not supported"}},
		{"legacy-replicas.yml", []string{"database /local/path/to/db: 2 replicas"}},
		{"age.yml", []string{"line 8: dbs[0].replica.age: not supported"}},
		{"access-point.yml", []string{"database /path/to/db", "access point ARNs are not supported"}},
		{"no-type.yml", []string{"database /db.sqlite: file replica: missing path"}},
	} {
		_, err := loadExample(t, tc.file, true)
		if err == nil {
			t.Errorf("%s loaded", tc.file)
			continue
		}
		for _, w := range append(tc.want, tc.file) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v\n\twant it to name %s", tc.file, err, w)
			}
		}
	}
}

// parseLitestream parses a Litestream config given as text.
func parseLitestream(t *testing.T, text string, expand bool) (*replicateConfig, error) {
	t.Helper()
	if !isLitestreamConfig([]byte(text)) {
		t.Fatalf("not taken for a Litestream config:\n%s", text)
	}
	return parseLitestreamConfig("litestream.yml", []byte(text), expand)
}

// TestLitestreamConfigErrors: bad Litestream configs get one error that
// names the file, the place and what is wrong, and never a secret.
func TestLitestreamConfigErrors(t *testing.T) {
	t.Setenv("SET_BUT_EMPTY", "")
	const secret = "Sup3rS3cr3tValue"
	s3 := func(extra string) string {
		return "dbs:\n  - path: /a.db\n    replica:\n      type: s3\n      bucket: b\n      path: db\n" + extra
	}
	for _, tc := range []struct {
		yaml string
		want []string
	}{
		// unknown replica types, in every spelling Litestream takes
		{"dbs:\n  - path: /a.db\n    replica:\n      type: webdav\n", []string{`replica type "webdav"`, "database /a.db"}},
		{"dbs:\n  - path: /a.db\n    replica:\n      url: oss://bucket/db\n", []string{`replica type "oss"`, "database /a.db"}},
		{"dbs:\n  - path: /a.db\n    replicas:\n      - url: webdavs://h/db\n", []string{`replica type "webdav"`, "database /a.db"}},
		// missing paths
		{"dbs:\n  - replica:\n      path: /r\n", []string{"line 2: dbs[0]: missing path"}},
		{"dbs:\n  - path: ''\n    replica:\n      path: /r\n", []string{"dbs[0]: missing path"}},
		{"dbs:\n  - path: /a.db\n    replica:\n      type: file\n", []string{"database /a.db: file replica: missing path"}},
		{"dbs:\n  - path: /a.db\n    replica:\n      type: s3\n      path: db\n", []string{"database /a.db: s3 replica: missing bucket"}},
		// unset variables, named with their line and key
		{"dbs:\n  - path: $DATA_DIR_NOT_SET/a.db\n    replica:\n      path: /r\n", []string{"line 2 (path)", "$DATA_DIR_NOT_SET is not set"}},
		{"dbs:\n  - path: /a.db\n    replica:\n      url: s3://${BUCKET_NOT_SET}/db\n", []string{"line 4 (url)", "${BUCKET_NOT_SET} is not set"}},
		// keys
		{s3("      bukcet: x\n"), []string{"line 7: dbs[0].replica.bukcet: unknown key"}},
		{"dbs:\n  - path: /a.db\n    replica: s3://b/db\n", []string{"line 3: dbs[0].replica: want a mapping"}},
		{s3("      skip-verify: true\n"), []string{"line 7: dbs[0].replica.skip-verify: not supported", "AWS_CA_BUNDLE"}},
		{s3("      sse-customer-key: " + secret + "\n"), []string{"dbs[0].replica.sse-customer-key: not supported"}},
		{"retention:\n  enabled: false\n" + s3(""), []string{"line 2: retention.enabled: not supported"}},
		{"heartbeat-url: https://hc-ping.com/x\n" + s3(""), []string{"line 1: heartbeat-url: not supported"}},
		{"dbs:\n  - path: /a.db\n    restore-if-db-not-exists: true\n    replica:\n      path: /r\n", []string{"dbs[0].restore-if-db-not-exists: not supported", "ltx-writer restore"}},
		// replicas
		{s3("      url: s3://b/db\n"), []string{"give url: or path:, not both"}},
		{"bucket: b\ndbs:\n  - path: /a.db\n    replica:\n      url: s3://c/db\n", []string{"give url: or bucket:"}},
		{"dbs:\n  - path: /a.db\n", []string{"database /a.db: no replica"}},
		{"dbs:\n  - path: /a.db\n    replica:\n      path: /r\n    replicas:\n      - path: /s\n", []string{"both replica: and replicas:"}},
		{"dbs:\n  - path: /a.db\n    replica:\n      type: s3\n      bucket: b\n      path: /db\n", []string{`s3 replica path "/db"`, "path: db"}},
		{"dbs:\n  - path: /a.db\n    replica:\n      path: s3://b/db\n", []string{"replica path is a URL"}},
		{"dbs:\n  - path: /a.db\n    replica:\n      url: s3://b\n", []string{"give a path in the bucket"}},
		{"dbs:\n  - path: /a.db\n    replica:\n      url: s3://b/db?skipVerify=true\n", []string{"skipVerify=true"}},
		{s3("      access-key-id: AKIAonly\n"), []string{"access-key-id given without secret-access-key"}},
		{s3("      secret-access-key: " + secret + "\n"), []string{"secret-access-key given without access-key-id"}},
		{"dbs:\n  - path: /a.db\n    replica: {path: /r}\n  - path: /a.db\n    replica: {path: /s}\n", []string{"database /a.db: listed twice"}},
		{"dbs:\n  - path: /a.db\n    replica: {path: /r}\n  - path: /b.db\n    replica: {path: /r}\n", []string{"database /b.db: its replica is /a.db's too"}},
		// settings
		{"levels:\n  - interval: 0s\n" + s3(""), []string{"levels[0].interval 0s: must be positive"}},
		{"levels: [" + strings.Repeat("{interval: 1m}, ", 8) + "{interval: 1h}]\n" + s3(""), []string{"levels: 9 given, at most 8"}},
		{"snapshot:\n  interval: 0s\n" + s3(""), []string{"snapshot.interval 0s: must be positive"}},
		{"dbs:\n  - path: /a.db\n    snapshot: {interval: 1h}\n    replica: {path: /r}\n  - path: /b.db\n    snapshot: {interval: 2h}\n    replica: {path: /s}\n", []string{"conflicting database snapshot intervals", "/a.db has 1h0m0s", "/b.db has 2h0m0s"}},
		{"l0-retention: -1s\n" + s3(""), []string{"l0-retention -1s: must not be negative"}},
		{s3("      sync-interval: 0s\n"), []string{"sync-interval 0s: must be positive"}},
		{s3("      sync-interval: 10\n"), []string{`"10" is not a duration`}},
		{"sync-interval: soon\n" + s3(""), []string{`"soon" is not a duration`}},
		{"dbs:\n  - path: /a.db\n    min-checkpoint-page-count: 0\n    replica: {path: /r}\n", []string{"min-checkpoint-page-count 0: must be positive"}},
		{"dbs:\n  - path: /a.db\n    min-checkpoint-page-count: 500\n    truncate-page-n: 100\n    replica: {path: /r}\n", []string{"truncate-page-n 100: must not be below min-checkpoint-page-count 500"}},
		{"dbs:\n  - path: /a.db\n    busy-timeout: 0s\n    replica: {path: /r}\n", []string{"busy-timeout 0s: must be positive"}},
		{"dbs: []\n", []string{"no databases listed under dbs"}},
		{"addr: ':9090'\n", []string{"no databases listed under dbs"}},
		{"x: &a [*a]\ndbs: *a\n", []string{"line 1: x: unknown key"}},
		{"dbs: &a [*a]\n", []string{"dbs[0]: want a mapping"}},
		{"defaults: &d {sync-interval: 1s}\ndbs: []\n", []string{"line 1: defaults: unknown key"}},
	} {
		_, err := parseLitestream(t, tc.yaml, true)
		if err == nil {
			t.Errorf("config loaded:\n%s", tc.yaml)
			continue
		}
		for _, w := range append(tc.want, "config litestream.yml: ") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("config\n%s\nerror %q\n\twant it to name %q", tc.yaml, err, w)
			}
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q shows the secret or spans lines", err)
		}
	}
}

// TestLitestreamEnv: $VAR and ${VAR} expand as in Litestream, over the
// whole file, with $PID set; -no-expand-env leaves the text alone; an
// unset variable in a comment is no error; a set but empty one is fine;
// the error for an unset variable in a secret names no part of a literal
// secret.
func TestLitestreamEnv(t *testing.T) {
	t.Setenv("LS_BUCKET", "envbucket")
	t.Setenv("LS_EMPTY", "")
	t.Setenv("LS_SECRET", "s3cr3t")
	text := `# a comment with $NOT_SET_IN_COMMENT in it
sync-interval: ${LS_SYNC:-1s}
dbs:
  - path: /a$LS_EMPTY.db # trailing $ALSO_NOT_SET
    replica:
      type: s3
      bucket: "${LS_BUCKET}"
      path: db-$PID
      access-key-id: AKIA
      secret-access-key: $LS_SECRET
`
	// ${LS_SYNC:-1s} is not shell syntax for os.Expand: the whole
	// "LS_SYNC:-1s" is the name, unset.
	if _, err := parseLitestream(t, text, true); err == nil || !strings.Contains(err.Error(), "line 2 (sync-interval): environment variable ${LS_SYNC:-1s} is not set") {
		t.Fatalf("unset ${LS_SYNC:-1s}: %v", err)
	}
	text = strings.Replace(text, "${LS_SYNC:-1s}", "2s", 1)
	cfg, err := parseLitestream(t, text, true)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("/a.db -> s3://envbucket/db-%d?force-path-style=false creds=AKIA:s3cr3t sync=2s", os.Getpid())
	if got := describeDB(t, cfg.Databases[0]); got != want {
		t.Errorf("expanded config maps to\n\t%s\nwant\n\t%s", got, want)
	}
	cfg, err = parseLitestream(t, text, false)
	if err == nil {
		t.Fatalf("unexpanded config loaded, with bucket %s", cfg.Databases[0].Replica)
	}
	cfg, err = parseLitestream(t, strings.Replace(text, `"${LS_BUCKET}"`, "$LS_BUCKET", 1), false)
	if err != nil {
		t.Fatal(err)
	}
	want = "/a$LS_EMPTY.db -> s3://$LS_BUCKET/db-$PID?force-path-style=false creds=AKIA:$LS_SECRET sync=2s"
	if got := describeDB(t, cfg.Databases[0]); got != want {
		t.Errorf("unexpanded config maps to\n\t%s\nwant\n\t%s", got, want)
	}

	// An unset variable on the line of a secret: named only when it is
	// the whole value, since a $ inside a literal secret is no reference.
	for _, tc := range []struct{ value, want, not string }{
		{"${LS_NOT_SET}", "${LS_NOT_SET} is not set", ""},
		{"'$LS_NOT_SET'", "$LS_NOT_SET is not set", ""},
		{"abc$defGHI", "refers to an environment variable that is not set", "def"},
		{"abc${defGHI}jkl", "refers to an environment variable that is not set", "def"},
	} {
		_, err := parseLitestream(t, "dbs:\n  - path: /a.db\n    replica:\n      url: s3://b/db\n      access-key-id: AKIA\n      secret-access-key: "+tc.value+"\n", true)
		if err == nil || !strings.Contains(err.Error(), "line 6 (secret-access-key): ") || !strings.Contains(err.Error(), tc.want) ||
			tc.not != "" && strings.Contains(err.Error(), tc.not) {
			t.Errorf("secret %s: %v; want %q without %q", tc.value, err, tc.want, tc.not)
		}
	}
}

// TestLitestreamCredentialsFromEnv: with no credentials in the config,
// LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY count where
// the AWS_ variables are not set, as in Litestream; otherwise the standard
// AWS chain is left to the client.
func TestLitestreamCredentialsFromEnv(t *testing.T) {
	const text = "dbs:\n  - path: /a.db\n    replica:\n      url: s3://b/db\n"
	unset := func(name string) {
		if v, ok := os.LookupEnv(name); ok {
			t.Cleanup(func() { os.Setenv(name, v) })
			os.Unsetenv(name)
		}
	}
	unset("AWS_ACCESS_KEY_ID")
	unset("AWS_SECRET_ACCESS_KEY")
	cfg, err := parseLitestream(t, text, true)
	if err != nil || cfg.Databases[0].credentials != nil {
		t.Fatalf("no credentials anywhere: %v, %v; want the AWS chain", err, cfg.Databases[0].credentials)
	}
	t.Setenv("LITESTREAM_ACCESS_KEY_ID", "ls-key")
	t.Setenv("LITESTREAM_SECRET_ACCESS_KEY", "ls-secret")
	cfg, err = parseLitestream(t, text, true)
	if err != nil || !strings.HasSuffix(describeDB(t, cfg.Databases[0]), "creds=ls-key:ls-secret") {
		t.Fatalf("LITESTREAM_ variables: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "aws-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
	cfg, err = parseLitestream(t, text, true)
	if err != nil || cfg.Databases[0].credentials != nil {
		t.Fatalf("AWS_ variables set: %v; want the AWS chain, which reads them", err)
	}
	cfg, err = parseLitestream(t, "access-key-id: cfg-key\nsecret-access-key: cfg-secret\n"+text, true)
	if err != nil || !strings.HasSuffix(describeDB(t, cfg.Databases[0]), "creds=cfg-key:cfg-secret") {
		t.Fatalf("config credentials: %v", err)
	}
}

// TestLitestreamS3URLs: the s3:// url forms of Litestream's parser; the
// query parameters ltx-writer does not read are named in a warning.
func TestLitestreamS3URLs(t *testing.T) {
	for _, tc := range []struct{ url, want, warn string }{
		{"s3://mybkt.s3.us-west-2.amazonaws.com/db", "s3://mybkt/db?force-path-style=false&region=us-west-2", ""},
		{"s3://mybkt.s3.amazonaws.com/db", "s3://mybkt/db?force-path-style=false", ""},
		{"s3://mybkt.localhost:9000/db", "s3://mybkt/db?endpoint=http%3A%2F%2Flocalhost%3A9000&force-path-style=true&region=us-east-1", ""},
		{"s3://mybkt.nyc3.digitaloceanspaces.com/db", "s3://mybkt/db?endpoint=https%3A%2F%2Fnyc3.digitaloceanspaces.com&force-path-style=false&region=nyc3", ""},
		{"s3://mybkt/db?endpoint=127.0.0.1:9000&region=x", "s3://mybkt/db?endpoint=http%3A%2F%2F127.0.0.1%3A9000&force-path-style=true&region=x", ""},
		{"s3://mybkt/db?endpoint=http://h:9000&forcePathStyle=false", "s3://mybkt/db?endpoint=http%3A%2F%2Fh%3A9000&force-path-style=false", ""},
		{"s3://mybkt/a/b/?storageClass=GLACIER&sign-payload=false", "s3://mybkt/a/b?force-path-style=false", "[line 4: dbs[0].replica.url ?sign-payload line 4: dbs[0].replica.url ?storageClass]"},
	} {
		cfg, err := parseLitestream(t, "dbs:\n  - path: /a.db\n    replica:\n      url: "+tc.url+"\n", false)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if got := cfg.Databases[0].Replica; got != tc.want {
			t.Errorf("url %s gives replica %s, want %s", tc.url, got, tc.want)
		}
		var warned []string
		for _, w := range cfg.warnings {
			warned = append(warned, fmt.Sprintf("line %d: %s", w.line, w.key))
		}
		if tc.warn == "" {
			tc.warn = "[]"
		}
		if fmt.Sprint(warned) != tc.warn {
			t.Errorf("url %s: warnings %s, want %s", tc.url, warned, tc.warn)
		}
	}
}

// TestConfigFormats: the format is told by its keys; ltx-writer's own
// stays as it was.
func TestConfigFormats(t *testing.T) {
	for text, litestream := range map[string]bool{
		"dbs:\n  - path: a.db\n": true,
		"addr: ':9090'\n":        true,
		"dbs: [{path: /a.db, replica: {url: ${LTX_TEST_URL}}}]\n": true,
		"databases:\n  - path: a.db\n    replica: /r\n":           false,
		"metrics-addr: ':9090'\n":                                 false,
		"metrics-addr: ':9090'\naddr: ':9090'\n":                  false,
		"dbs: []\ndatabases: []\n":                                false,
		"":                                                        false,
		"[1, 2]":                                                  false,
		"nonsense: 1\n":                                           false,
	} {
		if got := isLitestreamConfig([]byte(text)); got != litestream {
			t.Errorf("%q taken for Litestream's format: %v", text, got)
		}
	}
}

// TestLitestreamMergeKeys: YAML anchors and merge keys, which Litestream's
// YAML library reads, work here too, and their keys are checked.
func TestLitestreamMergeKeys(t *testing.T) {
	text := `dbs:
  - path: /a.db
    replica: &r
      type: s3
      bucket: b
      path: a
      sync-interval: 5s
  - path: /b.db
    replica:
      <<: *r
      path: b
`
	cfg, err := parseLitestream(t, text, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describeDB(t, cfg.Databases[1]), "/b.db -> s3://b/b?force-path-style=false sync=5s"; got != want {
		t.Errorf("merged replica maps to %s, want %s", got, want)
	}
	_, err = parseLitestream(t, strings.Replace(text, "sync-interval", "sync-intervall", 1), false)
	if err == nil || !strings.Contains(err.Error(), "line 7: dbs[0].replica.sync-intervall: unknown key") {
		t.Errorf("unknown key in a merged mapping: %v", err)
	}
}
