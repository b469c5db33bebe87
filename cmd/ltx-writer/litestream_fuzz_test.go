package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ltxvfs/ltxvfs/internal/fuzzseed"
	"github.com/ltxvfs/ltxvfs/storage"
)

// FuzzLitestreamConfig feeds arbitrary bytes to the Litestream config
// parser (without $VAR expansion, which depends on the environment).
// Properties: never a panic or a hang; an error names the file and shows
// no value of a secret key (access-key-id, secret-access-key, password,
// ...); a config that loads lists at least one database, each with an
// absolute path and a replica URL that parses and holds no secret, no
// path or replica twice.
func FuzzLitestreamConfig(f *testing.F) {
	fuzzseed.Write(f, []fuzzseed.Seed{
		fuzzseed.New("file", []byte("dbs:\n  - path: a.db\n    replica:\n      path: /r\n")),
		fuzzseed.New("s3-secret", []byte("access-key-id: AKIAEXAMPLEKEY\nsecret-access-key: VerySecretValue/1\ndbs:\n  - path: /a.db\n    replica:\n      type: s3\n      bucket: b\n      path: db\n      endpoint: 127.0.0.1:9000\n")),
		fuzzseed.New("secret-mapping", []byte("dbs:\n  - path: /a.db\n    replica:\n      url: s3://b/db\n      secret-access-key: {VerySecretValue: 1}\n")),
		fuzzseed.New("secret-list", []byte("dbs:\n  - path: /a.db\n    replica:\n      url: s3://b/db\n      secret-access-key: [VerySecretValue]\n")),
		fuzzseed.New("merge", []byte("dbs:\n  - path: /a.db\n    replica: &r {type: s3, bucket: b, path: a}\n  - path: /b.db\n    replica: {<<: *r, path: b}\n")),
		fuzzseed.New("alias-loop", []byte("dbs: &a [*a]\n")),
		fuzzseed.New("alias-fan", []byte("a: &a [{path: /x}, {path: /y}]\nb: &b [*a, *a, *a, *a]\ndbs: [*b, *b, *b, *b]\n")),
		fuzzseed.New("settings", []byte("levels: [{interval: 1s}]\nsnapshot: {interval: 1h, retention: 2h}\nl0-retention: 0s\nlogging: {level: debug, type: json}\ndbs:\n  - path: /a.db\n    snapshot: {interval: 1h}\n    checkpoint-interval: 0s\n    truncate-page-n: -5\n    replica: {url: 's3://b.s3.us-west-2.amazonaws.com/x?endpoint=h:1'}\n")),
		fuzzseed.New("url-userinfo", []byte("dbs:\n  - path: /a.db\n    replica:\n      url: s3://user:VerySecretValue@b/db\n")),
		fuzzseed.New("not-mapping", []byte("dbs:\n  - path: /a.db\n    replica: s3://b/db\n")),
	})
	docs, err := filepath.Glob(filepath.Join("testdata", "litestream", "*.yml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	path := filepath.Join(f.TempDir(), "litestream.yml")
	f.Fuzz(func(t *testing.T, content []byte) {
		cfg, err := parseLitestreamConfig(path, content, false)
		secrets := secretValues(content)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name %s: %v", path, err)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error shows the secret %q: %v", s, err)
				}
			}
			return
		}
		if len(cfg.Databases) == 0 {
			t.Fatal("a config without databases loaded")
		}
		paths, replicas := map[string]bool{}, map[string]bool{}
		for _, db := range cfg.Databases {
			if !filepath.IsAbs(db.Path) || db.Replica == "" || paths[db.Path] || replicas[db.Replica] {
				t.Fatalf("database %q (replica %q) loaded, or loaded twice", db.Path, db.Replica)
			}
			if _, err := storage.ParseURL(db.Replica); err != nil {
				t.Fatalf("database %q loaded with a replica that does not parse: %v", db.Path, err)
			}
			for _, s := range secrets {
				if strings.Contains(db.Replica, s) {
					t.Fatalf("replica URL %q holds the secret %q", db.Replica, s)
				}
			}
			paths[db.Path], replicas[db.Replica] = true, true
		}
	})
}

// secretValues are the values of content's secret keys that could be told
// apart in a message: long enough, and found nowhere else in content.
func secretValues(content []byte) []string {
	var doc yaml.Node
	if yaml.Unmarshal(content, &doc) != nil {
		return nil
	}
	var out []string
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		if depth > 20 {
			return
		}
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 1 && secretKeys[n.Content[i-1].Value] {
				var vals []*yaml.Node
				if c.Kind == yaml.ScalarNode {
					vals = []*yaml.Node{c}
				} else {
					vals = c.Content
				}
				for _, v := range vals {
					if len(v.Value) >= 8 && strings.Count(string(content), v.Value) == 1 {
						out = append(out, v.Value)
					}
				}
			}
			walk(c, depth+1)
		}
	}
	walk(&doc, 0)
	return out
}
