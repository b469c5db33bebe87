package reliability

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/storage"
	ltxs3 "github.com/ltxvfs/ltxvfs/storage/s3"
)

// refusedSecret is the secret key of the credentials the server refuses;
// no error or log line may show it (nor the good one).
const refusedSecret = "refused-secret-0a1b2c3d4e5f"

// Modes of expiringCreds.
const (
	credsGood    = iota // the server's credentials
	credsRefused        // a key the server does not know: expired, revoked
	credsFailing        // the provider cannot get any (a token service down)
)

// expiringCreds is a credentials provider whose credentials expire every
// 200 ms, as short-lived ones (an instance role, an STS session) do, and
// whose next ones are good, refused by the server, or not to be had,
// as the test says. The SDK's credentials cache asks it again on expiry.
type expiringCreds struct{ mode atomic.Int32 }

func (p *expiringCreds) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c := aws.Credentials{AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, CanExpire: true, Expires: time.Now().Add(200 * time.Millisecond), Source: "test"}
	switch p.mode.Load() {
	case credsRefused:
		// A key of its own, as expired or revoked session credentials
		// have: the SDK caches its signing key by access key and day, so
		// a new secret under the same key would go unused until midnight.
		c.AccessKeyID, c.SecretAccessKey = "ASIAEXPIREDSESSION01", refusedSecret
	case credsFailing:
		return aws.Credentials{}, errors.New("the token service is unreachable")
	}
	return c, nil
}

// TestCredentialsExpire replicates under load (a sync every 50 ms) into a
// real S3 server with credentials that expire every 200 ms, and makes the
// next ones refused by the server (403), then not to be had at all, then
// good again, while VFS readers follow the replica.
//
// While the credentials are bad, the writer keeps its WAL and retries,
// saying in its log that access is denied and that the credentials are to
// be checked (or that none could be had), and its lag grows; a reader
// that opens the replica gets an error saying so within its query's
// context, as does a following reader that must go to storage, neither
// held up by the SDK's retries; nothing shows a secret. Once good
// credentials return, the writer catches up and a restore holds every
// transaction the source committed.
func TestCredentialsExpire(t *testing.T) { s3test.ForEach(t, testCredentialsExpire) }

func testCredentialsExpire(t *testing.T, srv *s3test.Server) {
	seed := testSeed(t)
	ctx := context.Background()
	bucket := srv.NewBucket(t)
	creds := &expiringCreds{}
	open := func() *ltxs3.Client {
		u, err := storage.ParseURL(srv.URL(bucket, "db"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := ltxs3.New(ctx, u, ltxs3.Options{Credentials: aws.NewCredentialsCache(creds), MaxBackoff: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	run := startBadRun(t, seed, open(), open(), fmt.Sprintf("creds-follow-%s-%d.db", srv.Kind, seed))
	m, load, logs, reg, r, follower := run.m, run.load, run.logs, run.reg, run.r, run.follower

	var readErrs []string
	for _, phase := range []struct {
		name  string
		mode  int32
		words []string // what the writer's log and the readers' errors say
	}{
		{"refused credentials", credsRefused, []string{"denied", "check the AWS credentials"}},
		{"no credentials", credsFailing, []string{"no usable AWS credentials", "the token service is unreachable"}},
	} {
		before := r.TXID()
		creds.mode.Store(phase.mode)
		start := time.Now()
		line := waitLogged(t, logs, 10*time.Second, append([]string{"sync failed", bucket}, phase.words...)...)
		if !strings.Contains(line, "level=WARN") {
			t.Errorf("%s: the writer's line is not a warning: %s", phase.name, line)
		}
		t.Logf("%s: the writer's log says: %s", phase.name, truncate(line, 500))
		for lag := 0.0; lag < 0.3; lag = gaugeValue(t, reg, "ltx_writer_replica_lag_seconds") {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: ltx_writer_replica_lag_seconds is %v after 10 s", phase.name, lag)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := r.Err(); err != nil {
			t.Fatalf("%s: the writer stopped: %v", phase.name, err)
		}

		fresh := attachReader(t, fmt.Sprintf("creds-fresh-%s-%d-%d.db", srv.Kind, seed, phase.mode), open())
		reads := []readOutcome{readWithin(t, fresh, m, time.Second)}
		if reads[0].err == nil {
			t.Fatalf("%s: a reader opening the replica read transaction %d", phase.name, reads[0].k)
		}
		for range 3 {
			reads = append(reads, readWithin(t, follower, m, time.Second))
		}
		for i, o := range reads {
			if o.took > time.Second+lateSlack {
				t.Errorf("%s: a read under a 1 s context returned after %v: %v", phase.name, o.took.Round(time.Millisecond), o.err)
			}
			if o.err == nil {
				continue // the follower's cache answered: rows checked
			}
			// The follower's credentials may still be the last phase's,
			// cached until they expire: either names a credentials
			// problem. The fresh reader gets this phase's.
			if i == 0 && !containsAll(o.err.Error(), phase.words...) || !strings.Contains(o.err.Error(), "credentials") {
				t.Errorf("%s: read %d failed without saying why: %v", phase.name, i, o.err)
			}
			readErrs = append(readErrs, o.err.Error())
			if i == 0 {
				t.Logf("%s: a reader opening the replica: %s after %v", phase.name, shown(o.err), o.took.Round(time.Millisecond))
			}
		}
		if r.TXID() != before {
			t.Logf("%s: the writer went from TXID %s to %s (credentials cached before the change)", phase.name, before, r.TXID())
		}
	}

	// Good credentials again: the writer catches up, readers follow.
	creds.mode.Store(credsGood)
	stalled := r.TXID()
	back := time.Now()
	waitSynced(t, r, stalled)
	caughtUp := time.Since(back)
	restoreEqualsSource(t, load, m, r, open())
	var o readOutcome
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if o = readWithin(t, follower, m, 5*time.Second); o.err == nil && o.k == m.committed() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follower reads transaction %d of %d 10 s after the credentials came back: %v", o.k, m.committed(), o.err)
		}
	}

	all := logs.String() + strings.Join(readErrs, "\n")
	for _, secret := range []string{refusedSecret, s3test.SecretKey} {
		if strings.Contains(all, secret) {
			t.Fatalf("a secret key appears in the writer's log or a reader's error:\n%s", all)
		}
	}
	t.Logf("the writer stood at TXID %s, caught up %v after good credentials came back; %d transactions, all restored; the follower reads the newest; %d read errors and %d log bytes, no secret in them",
		stalled, caughtUp.Round(time.Millisecond), m.committed(), len(readErrs), len(logs.String()))
}
