package writer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/token"
	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/writer"
)

// headerTimestamp reads the header timestamp of the L0 file of txid.
func headerTimestamp(t *testing.T, c storage.Client, txid ltx.TXID) int64 {
	t.Helper()
	rc, err := c.OpenLTXFile(context.Background(), 0, txid, txid, 0, ltx.HeaderSize)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return hdr.Timestamp
}

func parseToken(t *testing.T, s string) token.Token {
	t.Helper()
	tok, err := token.Parse(s)
	if err != nil {
		t.Fatalf("SyncToken returned %q: %v", s, err)
	}
	return tok
}

// TestSyncToken: the token names the replica's newest TXID, which holds
// the commit made before the call, and the commit time of its file.
func TestSyncToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	r := newReplicator(t, path, c, testOpts())
	defer r.Close(context.Background())

	insert(t, app, 3)
	s, err := r.SyncToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok := parseToken(t, s)
	if tok.TXID != r.TXID() || tok.TXID == 0 {
		t.Fatalf("token TXID %d, replica at %d", tok.TXID, r.TXID())
	}
	if ms := headerTimestamp(t, c, tok.TXID); !tok.Matches(ms) {
		t.Fatalf("token time %s, the file of TXID %d says %d", tok.Time, tok.TXID, ms)
	}
	got, _ := restoreDump(t, c, restore.Options{TXID: tok.TXID})
	if got != dump(t, app) {
		t.Fatal("the token's TXID does not hold the rows committed before SyncToken")
	}
	// The manifest names it: a reader following the manifest finds it.
	b, _, err := storage.ReadAllObject(context.Background(), c, manifest.Name, storage.ReadOptions{}, manifest.MaxSize)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := manifest.Decode(b); err != nil || m.TXID != tok.TXID {
		t.Fatalf("manifest after SyncToken: %v, %v; want TXID %d", m, err, tok.TXID)
	}

	// Nothing new: the same token.
	if again, err := r.SyncToken(context.Background()); err != nil || again != s {
		t.Fatalf("SyncToken with nothing new = %q, %v; want %q", again, err, s)
	}
	insert(t, app, 1)
	next, err := r.SyncToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := parseToken(t, next); n.TXID <= tok.TXID {
		t.Fatalf("token after a commit names TXID %d, not past %d", n.TXID, tok.TXID)
	}

	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SyncToken(context.Background()); !errors.Is(err, writer.ErrClosed) {
		t.Fatalf("SyncToken after Close: %v, want ErrClosed", err)
	}
}

// TestSyncTokenConcurrent: commits and tokens from several goroutines
// while the background loop syncs too; each token's TXID holds the row
// committed before its call.
func TestSyncTokenConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	opts := testOpts()
	opts.SyncInterval = 5 * time.Millisecond
	r := newReplicator(t, path, c, opts)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())

	type got struct {
		id  int
		tok token.Token
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []got
		failed  atomic.Value
	)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				id := 1000*(g+1) + i
				if _, err := app.Exec(`INSERT INTO t (id, v, n) VALUES (?, 'x', 0)`, id); err != nil {
					failed.Store(err)
					return
				}
				s, err := r.SyncToken(context.Background())
				if err != nil {
					failed.Store(err)
					return
				}
				tok, err := token.Parse(s)
				if err != nil {
					failed.Store(err)
					return
				}
				mu.Lock()
				results = append(results, got{id, tok})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(err)
	}
	for _, res := range results {
		rows, _ := restoreDump(t, c, restore.Options{TXID: res.tok.TXID})
		if !strings.Contains(rows, fmt.Sprintf("%d|x|0\n", res.id)) {
			t.Fatalf("TXID %d of a token asked for after row %d was committed lacks it", res.tok.TXID, res.id)
		}
		if ms := headerTimestamp(t, c, res.tok.TXID); !res.tok.Matches(ms) {
			t.Fatalf("token %s: the file of its TXID has timestamp %d", res.tok, ms)
		}
	}
}

// noManifestWrites fails every write of the manifest while on.
type noManifestWrites struct {
	storage.Client
	on atomic.Bool
}

func (c *noManifestWrites) WriteObject(ctx context.Context, name string, r io.Reader, opts storage.WriteOptions) (storage.ObjectInfo, error) {
	if c.on.Load() && name == manifest.Name {
		return storage.ObjectInfo{}, errors.New("injected: manifest write refused")
	}
	return c.Client.WriteObject(ctx, name, r, opts)
}

// TestSyncTokenManifestNotPublished: a token is only handed out once the
// manifest names its TXID: a reader following a manifest behind it would
// wait in vain.
func TestSyncTokenManifestNotPublished(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := &noManifestWrites{Client: newReplica(t)}
	r := newReplicator(t, path, c, testOpts())
	defer r.Close(context.Background())
	if _, err := r.SyncToken(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.on.Store(true)
	insert(t, app, 2)
	_, err := r.SyncToken(context.Background())
	if err == nil || !strings.Contains(err.Error(), "manifest that names it could not be published") {
		t.Fatalf("SyncToken while the manifest cannot be written: %v", err)
	}
	c.on.Store(false)
	s, err := r.SyncToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok := parseToken(t, s); tok.TXID != r.TXID() {
		t.Fatalf("token TXID %d, replica at %d", tok.TXID, r.TXID())
	}
}
