package main

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// What ltx-writer does with each key of Litestream v0.5's config
// (cmd/litestream/main.go: Config, DBConfig, ReplicaConfig and the
// ReplicaSettings shared by the top level and each replica). Litestream
// ignores keys it does not know; here a key outside these tables is an
// error, so that a typo is not silently dropped, and a Litestream key that
// ltx-writer cannot honour is refused or, where ignoring it changes
// nothing a reader of the replica could see, ignored with a warning.

type action int

const (
	use    action = iota // mapped onto ltx-writer's settings
	warn                 // ignored, with a warning
	refuse               // an error
)

// keyRule is the fate of one key. A key whose value is off (see off) is
// accepted quietly whatever its rule: `skip-verify: false` asks nothing.
type keyRule struct {
	act  action
	why  string    // for warn and refuse: what ltx-writer does instead
	kind yaml.Kind // for use: the node kind the value must be
	off  func(*yaml.Node) bool
	sub  map[string]keyRule // for use: the keys of a mapping value
	item map[string]keyRule // for use: the keys of each mapping of a sequence
}

func scalar() keyRule { return keyRule{act: use, kind: yaml.ScalarNode} }

func warned(why string) keyRule { return keyRule{act: warn, why: why} }

func refused(why string) keyRule { return keyRule{act: refuse, why: why} }

// unless makes r apply only when the value is not the one Litestream takes
// for off.
func (r keyRule) unless(off func(*yaml.Node) bool) keyRule { r.off = off; return r }

func isFalse(n *yaml.Node) bool { return boolValue(n, false) }
func isTrue(n *yaml.Node) bool  { return boolValue(n, true) }

func boolValue(n *yaml.Node, want bool) bool {
	var b bool
	return n.Kind == yaml.ScalarNode && n.Decode(&b) == nil && b == want
}

func isEmpty(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Value == "" || n.Tag == "!!null") || n.Kind != yaml.ScalarNode && len(n.Content) == 0
}

const (
	whyBackend    = "a setting of %s replicas, which ltx-writer does not write to"
	whyDirectory  = "ltx-writer replicates the databases listed one by one with path:, not directories (dir:)"
	whyEncryption = "ltx-writer does not ask S3 for encryption with a key of yours (SSE-C, SSE-KMS): objects would get the bucket's default encryption instead"
)

// replicaSettingRules are Litestream's ReplicaSettings: the keys a replica
// takes, which the top level gives as defaults for every replica.
func replicaSettingRules() map[string]keyRule {
	r := map[string]keyRule{
		"sync-interval":       scalar(),
		"access-key-id":       scalar(),
		"secret-access-key":   scalar(),
		"region":              scalar(),
		"bucket":              scalar(),
		"endpoint":            scalar(),
		"force-path-style":    scalar(),
		"validation-interval": warned("ltx-writer runs no background validation"),
		"max-sync-ltx-files":  warned("ltx-writer uploads every pending L0 file at each sync"),
		"auto-recover":        warned("ltx-writer stops on a replica error instead of resetting its state").unless(isFalse),
		"sign-payload":        warned("the AWS SDK's default payload signing applies").unless(isTrue),
		"require-content-md5": warned("the AWS SDK's default checksums apply").unless(isTrue),
		"skip-verify":         refused("TLS verification cannot be turned off; trust the server's certificate with AWS_CA_BUNDLE=FILE instead").unless(isFalse),
		"storage-class":       warned("objects are written in the bucket's default storage class").unless(isEmpty),
		"part-size":           warned("the AWS SDK's upload settings apply"),
		"concurrency":         warned("the AWS SDK's upload settings apply"),
		"sse-kms-key-id":      refused(whyEncryption).unless(isEmpty),
		"age":                 refused("ltx-writer has no age encryption (nor has Litestream since v0.5.1)").unless(ageOff),
	}
	for _, k := range []string{"sse-customer-algorithm", "sse-customer-key", "sse-customer-key-path"} {
		r[k] = refused(whyEncryption).unless(isEmpty)
	}
	for backend, keys := range map[string][]string{
		"abs (Azure)": {"account-name", "account-key", "sas-token"},
		"sftp":        {"host", "user", "password", "key-path", "concurrent-writes", "host-key"},
		"webdav":      {"webdav-url", "webdav-username", "webdav-password"},
		"nats":        {"jwt", "seed", "creds", "nkey", "username", "token", "tls", "root-cas", "client-cert", "client-key", "max-reconnects", "reconnect-wait", "timeout"},
	} {
		for _, k := range keys {
			r[k] = warned(fmt.Sprintf(whyBackend, backend))
		}
	}
	return r
}

// ageOff: an age block without identities or recipients, which Litestream
// accepts and ignores.
func ageOff(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		return isEmpty(n)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !isEmpty(resolve(n.Content[i+1])) {
			return false
		}
	}
	return true
}

func replicaRules() map[string]keyRule {
	r := replicaSettingRules()
	r["type"], r["path"], r["url"] = scalar(), scalar(), scalar()
	r["name"] = scalar() // a label, deprecated; Litestream does nothing with it either
	return r
}

func snapshotRules() map[string]keyRule {
	return map[string]keyRule{"interval": scalar(), "retention": scalar()}
}

func dbRules() map[string]keyRule {
	replica := replicaRules()
	r := map[string]keyRule{
		"path":                      scalar(),
		"replica":                   {act: use, kind: yaml.MappingNode, sub: replica},
		"replicas":                  {act: use, kind: yaml.SequenceNode, item: replica},
		"snapshot":                  {act: use, kind: yaml.MappingNode, sub: snapshotRules()},
		"checkpoint-interval":       scalar(),
		"busy-timeout":              scalar(),
		"min-checkpoint-page-count": scalar(),
		"truncate-page-n":           scalar(),
		"meta-path":                 warned("ltx-writer keeps its own small state file, <db>-ltx, beside the database"),
		"monitor-interval":          warned("ltx-writer looks for new WAL frames every sync-interval"),
		"max-sync-wal-bytes":        warned("ltx-writer copies the whole pending WAL at each sync"),
		"restore-if-db-not-exists":  refused("ltx-writer does not restore at start: run `ltx-writer restore -replica URL -o PATH` first").unless(isFalse),
		"dir":                       refused(whyDirectory),
	}
	for _, k := range []string{"pattern", "recursive", "watch", "meta-dir"} {
		r[k] = refused(whyDirectory)
	}
	return r
}

func topRules() map[string]keyRule {
	r := replicaSettingRules()
	r["dbs"] = keyRule{act: use, kind: yaml.SequenceNode, item: dbRules()}
	r["addr"] = scalar()
	r["levels"] = keyRule{act: use, kind: yaml.SequenceNode, item: map[string]keyRule{"interval": scalar()}}
	r["snapshot"] = keyRule{act: use, kind: yaml.MappingNode, sub: snapshotRules()}
	r["l0-retention"] = scalar()
	r["logging"] = keyRule{act: use, kind: yaml.MappingNode, sub: map[string]keyRule{
		"level": scalar(), "type": scalar(), "stderr": scalar(), "source": scalar(),
	}}
	r["retention"] = keyRule{act: use, kind: yaml.MappingNode, sub: map[string]keyRule{
		"enabled": refused("ltx-writer deletes expired files itself; it cannot leave that to the bucket's lifecycle rules").unless(isTrue),
	}}
	r["l0-retention-check-interval"] = warned("ltx-writer applies l0-retention at each compaction")
	r["validation"] = warned("ltx-writer runs no background validation")
	r["verify-compaction"] = warned("ltx-writer runs no compaction verification").unless(isFalse)
	r["shutdown-sync-timeout"] = warned("ltx-writer waits up to 30s for the final sync")
	r["shutdown-sync-interval"] = warned("ltx-writer retries the final sync on its own schedule")
	r["socket"] = warned("ltx-writer has no control socket")
	r["mcp-addr"] = warned("ltx-writer has no MCP server").unless(isEmpty)
	r["heartbeat-interval"] = warned("ltx-writer sends no heartbeats")
	r["heartbeat-url"] = refused("ltx-writer sends no heartbeats, so the monitor would report it dead; watch its metrics (addr:) instead").unless(isEmpty)
	r["exec"] = refused("ltx-writer does not run your application: start it on its own, beside `ltx-writer replicate`").unless(isEmpty)
	return r
}

// warning is a key ignored, for the log.
type warning struct {
	line int
	key  string
	why  string
}

func (w warning) String() string {
	return fmt.Sprintf("line %d: %s: ignored: %s", w.line, w.key, w.why)
}

// maxNodes bounds the nodes a walk visits, so that aliases that expand
// into an exponential tree are an error rather than a hang.
const maxNodes = 100000

// keyWalk checks the keys of a parsed config against the rules.
type keyWalk struct {
	warnings []warning
	visited  int
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// mapping checks the keys of n, a mapping at where (a dotted path such as
// dbs[0].replica), against rules.
func (w *keyWalk) mapping(n *yaml.Node, rules map[string]keyRule, where string) error {
	if w.visited++; w.visited > maxNodes {
		return fmt.Errorf("line %d: more than %d nodes (aliases that expand too far?)", n.Line, maxNodes)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Tag == "!!merge" { // <<: *defaults
			if err := w.merge(v, rules, where); err != nil {
				return err
			}
			continue
		}
		if err := w.key(k, v, rules, join(where, k.Value)); err != nil {
			return err
		}
	}
	return nil
}

func (w *keyWalk) merge(v *yaml.Node, rules map[string]keyRule, where string) error {
	if v.Kind == yaml.SequenceNode {
		for _, m := range v.Content {
			if err := w.merge(resolve(m), rules, where); err != nil {
				return err
			}
		}
		return nil
	}
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: %s: << merges a mapping", v.Line, where)
	}
	return w.mapping(v, rules, where)
}

func (w *keyWalk) key(k, v *yaml.Node, rules map[string]keyRule, where string) error {
	r, ok := rules[k.Value]
	switch {
	case !ok:
		return fmt.Errorf("line %d: %s: unknown key (not in Litestream v0.5's configuration, nor ltx-writer's)", k.Line, where)
	case r.off != nil && r.off(v):
		return nil
	case r.act == warn:
		w.warnings = append(w.warnings, warning{k.Line, where, r.why})
		return nil
	case r.act == refuse:
		return fmt.Errorf("line %d: %s: not supported: %s", k.Line, where, r.why)
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return nil // as if absent
	case v.Kind != r.kind:
		return fmt.Errorf("line %d: %s: want %s", k.Line, where, kindName(r.kind))
	}
	switch {
	case r.sub != nil:
		return w.mapping(v, r.sub, where)
	case r.item != nil:
		for i, item := range v.Content {
			item = resolve(item)
			at := fmt.Sprintf("%s[%d]", where, i)
			if item.Kind != yaml.MappingNode {
				return fmt.Errorf("line %d: %s: want a mapping of keys", item.Line, at)
			}
			if err := w.mapping(item, r.item, at); err != nil {
				return err
			}
		}
	}
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping of keys"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value" // never quote it: it may be a secret
}

func join(where, key string) string {
	if where == "" {
		return key
	}
	return where + "." + key
}
