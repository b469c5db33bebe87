package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/lease"
	ltxs3 "github.com/ltxvfs/ltxvfs/storage/s3"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// TestConditionalWrites checks what the lease is built on, on the test
// server (versitygw): a PUT with If-None-Match: * fails with 412 when the
// object exists, and a PUT with If-Match fails with 412 when the ETag is
// not the object's.
func TestConditionalWrites(t *testing.T) { s3test.ForEach(t, testConditionalWrites) }

func testConditionalWrites(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	r := srv.NewReplica(t)
	key := r.Prefix + "/conditional"
	put := func(body string, ifNoneMatch, ifMatch *string) (string, error) {
		out, err := r.SDK.PutObject(ctx, &awss3.PutObjectInput{
			Bucket: aws.String(r.Bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(body)),
			IfNoneMatch: ifNoneMatch, IfMatch: ifMatch,
		})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.ETag), nil
	}
	etag, err := put("first", aws.String("*"), nil)
	if err != nil {
		t.Fatalf("create with If-None-Match: *: %v", err)
	}
	if _, err := put("second", aws.String("*"), nil); err == nil || !strings.Contains(err.Error(), "412") {
		t.Fatalf("create over an existing object with If-None-Match: * = %v, want a 412", err)
	}
	etag2, err := put("third", nil, aws.String(etag))
	if err != nil {
		t.Fatalf("replace with the right If-Match: %v", err)
	}
	if _, err := put("fourth", nil, aws.String(etag)); err == nil || !strings.Contains(err.Error(), "412") {
		t.Fatalf("replace with a stale If-Match = %v, want a 412", err)
	}
	if etag2 == etag {
		t.Fatal("the ETag did not change with the content")
	}
}

// TestLease: a second writer is refused, naming the holder; renewals keep
// the lease; a released lease is free at once; a holder that stops
// renewing (crashed) loses the lease when it lapses, the next writer takes
// it over, and the old holder then learns it lost it.
func TestLease(t *testing.T) { s3test.ForEach(t, testLease) }

func testLease(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	r := srv.NewReplica(t)
	other := srv.Client(t, r.URL) // another writer's client on the same replica

	a, err := r.Client.AcquireLease(ctx, lease.Holder{Owner: "writer A"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.AcquireLease(ctx, lease.Holder{Owner: "writer B"}, time.Second)
	if !errors.Is(err, lease.ErrHeld) || !strings.Contains(err.Error(), "writer A") {
		t.Fatalf("second writer: %v, want ErrLeaseHeld naming writer A", err)
	}
	if err := a.Renew(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := other.AcquireLease(ctx, lease.Holder{Owner: "writer B"}, time.Second)
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if err := a.Renew(ctx, time.Second); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("renewing a released lease: %v, want ErrLeaseHeld", err)
	}

	// B crashes: it never renews nor releases. Until the lease lapses,
	// A is refused; then A takes it over.
	if _, err := r.Client.AcquireLease(ctx, lease.Holder{Owner: "writer A"}, time.Second); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("while B's lease runs: %v, want ErrLeaseHeld", err)
	}
	var a2 lease.Lease
	deadline := time.Now().Add(10 * time.Second)
	for {
		a2, err = r.Client.AcquireLease(ctx, lease.Holder{Owner: "writer A"}, time.Second)
		if err == nil {
			break
		}
		if !errors.Is(err, lease.ErrHeld) || time.Now().After(deadline) {
			t.Fatalf("taking over a lapsed lease: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := b.Renew(ctx, time.Second); !errors.Is(err, lease.ErrHeld) || !strings.Contains(err.Error(), "writer A") {
		t.Fatalf("the crashed holder renewing after the takeover: %v, want ErrLeaseHeld naming writer A", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatalf("releasing a lost lease: %v", err)
	}
	if err := a2.Renew(ctx, time.Second); err != nil {
		t.Fatalf("the lost lease's release touched the new holder's: %v", err)
	}
}

// TestLeaseRace: of many writers trying at once, exactly one gets the
// lease, on a fresh replica, when taking over a released one, and when
// taking over the unexpired lease of a writer that exited (several
// restarts of it racing).
func TestLeaseRace(t *testing.T) { s3test.ForEach(t, testLeaseRace) }

func testLeaseRace(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	r := srv.NewReplica(t)
	clients := make([]*ltxs3.Client, 8)
	for i := range clients {
		clients[i] = srv.Client(t, r.URL)
	}
	racer := lease.ThisProcess("racer", "/data/app.db")
	race := func() lease.Lease {
		var mu sync.Mutex
		var won []lease.Lease
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				l, err := c.AcquireLease(ctx, racer, 30*time.Second)
				if err != nil {
					if !errors.Is(err, lease.ErrHeld) {
						t.Errorf("racer %d: %v", i, err)
					}
					return
				}
				mu.Lock()
				won = append(won, l)
				mu.Unlock()
			})
		}
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("%d writers got the lease at once, want 1", len(won))
		}
		return won[0]
	}
	l := race()
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	l = race()
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Client.AcquireLease(ctx, storagetest.ExitedPredecessor(t, racer), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if l := race(); l.TookOverFrom() == nil {
		t.Fatal("the winner did not take over the exited writer's lease")
	}
}

// TestLeaseEmptyPrefix: a replica at the bucket's root keeps its lease at
// a key that does not start with a slash.
func TestLeaseEmptyPrefix(t *testing.T) { s3test.ForEach(t, testLeaseEmptyPrefix) }

func testLeaseEmptyPrefix(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	bucket := srv.NewBucket(t)
	c := srv.Client(t, srv.URL(bucket, ""))
	l, err := c.AcquireLease(ctx, lease.Holder{Owner: "root writer"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if _, err := srv.SDK(t).HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(ltxs3.LeaseObjectName)}); err != nil {
		t.Fatalf("lease object at the bucket's root: %v", err)
	}
}

// TestLeaseUnsupported: a server that refuses conditional writes (501), or
// that ignores them, grants no lease; the error matches
// errors.ErrUnsupported, so the writer falls back to checking for other
// writers' files before each upload.
func TestLeaseUnsupported(t *testing.T) {
	for _, tt := range []struct {
		name   string
		handle func(n int, w http.ResponseWriter, r *http.Request)
	}{
		{"refuses", func(n int, w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Match") != "" {
				s3Error(w, http.StatusNotImplemented, "NotImplemented")
				return
			}
			w.Header().Set("ETag", `"e"`)
		}},
		{"ignores", func(n int, w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("ETag", fmt.Sprintf(`"e%d"`, n))
			if r.Method == http.MethodGet {
				io.WriteString(w, `{"owner":"x","ttl_ms":1000,"nonce":"n"}`)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeClient(t, "db", 1, tt.handle)
			_, err := c.AcquireLease(context.Background(), lease.Holder{Owner: "writer"}, time.Second)
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Fatalf("AcquireLease = %v, want an error matching errors.ErrUnsupported", err)
			}
		})
	}
}

// TestLeaseRemovesStaleSpools: the temp file of a large upload that a
// killed writer left is removed when the next writer takes the lease;
// another replica's is not.
func TestLeaseRemovesStaleSpools(t *testing.T) { s3test.ForEach(t, testLeaseRemovesStaleSpools) }

func testLeaseRemovesStaleSpools(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	t.Setenv("TMPDIR", t.TempDir())
	r := srv.NewReplica(t)
	other := srv.NewReplica(t)
	// As an upload past 8 MiB makes them, and a killed writer leaves them.
	plant := func(c *ltxs3.Client) string {
		f, err := os.CreateTemp("", ltxs3.SpoolPrefix(c)+"*.ltx")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		return f.Name()
	}
	mine, theirs := plant(r.Client), plant(other.Client)
	l, err := r.Client.AcquireLease(ctx, lease.Holder{Owner: "writer"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if _, err := os.Stat(mine); !os.IsNotExist(err) {
		t.Errorf("the killed writer's upload temp file is still there: %v", err)
	}
	if _, err := os.Stat(theirs); err != nil {
		t.Errorf("another replica's upload temp file was removed: %v", err)
	}
}

// TestLeaseExitedPredecessor: a writer restarted after a kill -9 takes
// over at once the unexpired lease its predecessor (same database, same
// kernel boot and PID namespace, PID gone) left, and then holds it against
// everyone else; a lease whose holder is alive, or is another database's
// writer, or ran in another boot or PID namespace, or predates the holder
// fields, still keeps the writer out until it lapses.
func TestLeaseExitedPredecessor(t *testing.T) { s3test.ForEach(t, testLeaseExitedPredecessor) }

func testLeaseExitedPredecessor(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	me := lease.ThisProcess("restarted writer", "/data/app.db")
	dead := storagetest.ExitedPredecessor(t, me)

	t.Run("taken over", func(t *testing.T) {
		r := srv.NewReplica(t)
		old, err := r.Client.AcquireLease(ctx, dead, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		l, err := srv.Client(t, r.URL).AcquireLease(ctx, me, time.Minute)
		if err != nil {
			t.Fatalf("restarted writer: %v, want the exited predecessor's lease", err)
		}
		if got := l.TookOverFrom(); got == nil || got.PID != dead.PID || got.Path != dead.Path {
			t.Fatalf("TookOverFrom = %+v, want the predecessor (PID %d, %s)", got, dead.PID, dead.Path)
		}
		// The new holder is alive: a third writer, even of the same
		// database in this same process, is refused.
		third := lease.ThisProcess("third writer", me.Path)
		if _, err := srv.Client(t, r.URL).AcquireLease(ctx, third, time.Minute); !errors.Is(err, lease.ErrHeld) || !strings.Contains(err.Error(), "restarted writer") {
			t.Fatalf("third writer: %v, want ErrLeaseHeld naming the restarted writer", err)
		}
		if err := old.Renew(ctx, time.Minute); !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("the predecessor's lease after the takeover: %v, want ErrLeaseHeld", err)
		}
		if err := l.Renew(ctx, time.Minute); err != nil {
			t.Fatalf("renewing the taken-over lease: %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})

	for _, tt := range []struct {
		name string
		held func(h *lease.Holder)
	}{
		{"alive: parent process", func(h *lease.Holder) { h.PID = os.Getppid() }},
		{"alive: this process", func(h *lease.Holder) { h.PID = os.Getpid() }},
		{"another database", func(h *lease.Holder) { h.Path = "/data/other.db" }},
		{"another boot", func(h *lease.Holder) { h.BootID = "0b0e5c1a-0000-4000-8000-000000000000" }},
		{"another PID namespace", func(h *lease.Holder) { h.PIDNamespace = "pid:[1]" }},
	} {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			r := srv.NewReplica(t)
			held := dead
			held.Owner = "the holder"
			tt.held(&held)
			if _, err := r.Client.AcquireLease(ctx, held, time.Minute); err != nil {
				t.Fatal(err)
			}
			_, err := srv.Client(t, r.URL).AcquireLease(ctx, me, time.Minute)
			if !errors.Is(err, lease.ErrHeld) || !strings.Contains(err.Error(), "the holder") || !strings.Contains(err.Error(), "expires") {
				t.Fatalf("restarted writer: %v, want ErrLeaseHeld naming the holder and its expiry", err)
			}
		})
	}

	// A lease object written before the holder fields: held until it
	// lapses or is released, as before.
	t.Run("old lease object", func(t *testing.T) {
		r := srv.NewReplica(t)
		put := func(body string) {
			t.Helper()
			if _, err := r.SDK.PutObject(ctx, &awss3.PutObjectInput{
				Bucket: aws.String(r.Bucket), Key: aws.String(r.Prefix + "/" + ltxs3.LeaseObjectName), Body: strings.NewReader(body),
			}); err != nil {
				t.Fatal(err)
			}
		}
		put(`{"owner":"ltx-writer pid 1 on host for /data/app.db","ttl_ms":60000,"nonce":"0123"}`)
		if _, err := r.Client.AcquireLease(ctx, me, time.Minute); !errors.Is(err, lease.ErrHeld) || !strings.Contains(err.Error(), "pid 1 on host") {
			t.Fatalf("over an old unexpired lease: %v, want ErrLeaseHeld naming its owner", err)
		}
		put(`{"owner":"ltx-writer pid 1 on host for /data/app.db","ttl_ms":0,"nonce":"4567","released":true}`)
		l, err := r.Client.AcquireLease(ctx, me, time.Minute)
		if err != nil {
			t.Fatalf("over an old released lease: %v", err)
		}
		if l.TookOverFrom() != nil {
			t.Fatalf("TookOverFrom = %+v after taking a released lease, want nil", l.TookOverFrom())
		}
		l.Release(ctx)
	})
}

// leaseStore is a fake S3 server holding one lease object that honours
// If-None-Match: * and If-Match. The first write that loseWrite picks
// lands, but its answer is a 500, as when a reply is lost: the SDK
// retries the request, and the retry's condition fails.
type leaseStore struct {
	mu        sync.Mutex
	body      []byte
	etag      string
	writes    int
	lost      bool
	loseWrite func(ifMatch string) bool
	readBack  bool // the lease object was read after the lost write
	probes    int  // writes with If-None-Match after that read
}

func (s *leaseStore) handle(_ int, w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		s.readBack = s.lost
		if s.body == nil {
			s3Error(w, http.StatusNotFound, "NoSuchKey")
			return
		}
		w.Header().Set("ETag", s.etag)
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Write(s.body)
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		ifNoneMatch, ifMatch := r.Header.Get("If-None-Match"), r.Header.Get("If-Match")
		if s.readBack && ifNoneMatch == "*" {
			s.probes++
		}
		switch {
		case ifNoneMatch == "*" && s.body != nil, ifMatch != "" && ifMatch != s.etag:
			s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed")
			return
		}
		s.writes++
		s.body, s.etag = b, fmt.Sprintf(`"e%d"`, s.writes)
		if !s.lost && s.loseWrite(ifMatch) {
			s.lost = true
			s3Error(w, http.StatusInternalServerError, "InternalError")
			return
		}
		w.Header().Set("ETag", s.etag)
	default:
		s3Error(w, http.StatusNotImplemented, "NotImplemented")
	}
}

// TestLeaseLostReply: a lease whose create or takeover landed though its
// answer was lost (the SDK's retry then fails its condition) is the
// writer's, and it is taken as any other: the server's conditional writes
// are probed, and the upload temp files a killed writer left are removed.
func TestLeaseLostReply(t *testing.T) {
	for _, tt := range []struct {
		name      string
		seed      string // the lease object before, if any
		loseWrite func(ifMatch string) bool
	}{
		{"create", "", func(ifMatch string) bool { return ifMatch == "" }},
		{"takeover", `{"owner":"old","ttl_ms":1000,"nonce":"n0","released":true}`, func(ifMatch string) bool { return ifMatch != "" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			s := &leaseStore{loseWrite: tt.loseWrite}
			if tt.seed != "" {
				s.body, s.etag = []byte(tt.seed), `"seed"`
			}
			c, _ := fakeClient(t, "db", 3, s.handle)
			spool, err := os.CreateTemp("", ltxs3.SpoolPrefix(c)+"*.ltx")
			if err != nil {
				t.Fatal(err)
			}
			spool.Close()
			l, err := c.AcquireLease(context.Background(), lease.Holder{Owner: "writer"}, time.Minute)
			if err != nil {
				t.Fatalf("AcquireLease after a lost reply: %v", err)
			}
			s.mu.Lock()
			lost, probes := s.lost, s.probes
			s.mu.Unlock()
			if !lost {
				t.Fatal("no reply was lost: the test did not reach the path it is for")
			}
			if probes == 0 {
				t.Error("the lease was granted without probing the server's conditional writes")
			}
			if _, err := os.Stat(spool.Name()); !os.IsNotExist(err) {
				t.Errorf("the killed writer's upload temp file is still there: %v", err)
			}
			if err := l.Renew(context.Background(), time.Minute); err != nil {
				t.Errorf("renewing the lease: %v", err)
			}
		})
	}
}
