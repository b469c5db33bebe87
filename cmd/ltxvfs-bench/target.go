package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// The kinds of replica the readers are measured on. Each is a target: the
// same chain of wrappers (the recorder, wrap.Counting, the injected
// latency of wrap.Faulty) over a different view of the one replica the
// writer made, so that every difference between them is the reader's.
const (
	// ours is the replica as the writer makes it: LTX files, hints and
	// the manifest.
	targetOurs = "ours"
	// noManifest is the same replica without its manifest, as a writer
	// with writer.Options.NoManifest leaves it: readers list and probe.
	targetNoManifest = "manifest off"
	// litestream is the same replica without any of the writer's objects
	// (hints, manifest): its LTX files alone, byte for byte what a writer
	// with NoHints and NoManifest writes, and the shape Litestream writes.
	targetLitestream = "litestream-shaped"
	// http is the same replica read from nginx over HTTP (-serve-http).
	targetHTTP = "http"
)

// target is one way the readers reach the replica, with its own counters
// and record, and the figures measured through it.
type target struct {
	name     string
	client   storage.Client // the view the readers get, latency and counters below them
	counting *wrap.Counting
	rec      *recorder

	opens    []Cost // every cold open at the latest TXID
	openHeap int64  // Go heap grown by the first reader's open and first lookup
	fetches  []span // every GET of the measured reads
}

// newTarget wraps the view c as every reader's client is wrapped: the
// recorder on top, then the counters, then the injected latency (every
// request, the 404 of a hidden object's read included, pays it before it
// reaches c).
func newTarget(name string, c storage.Client, seed uint64, beh wrap.Behaviour) *target {
	faulty := wrap.NewFaulty(c, wrap.Uniform(seed, beh))
	counting := wrap.NewCounting(faulty)
	return &target{name: name, client: c, counting: counting, rec: newRecorder(counting)}
}

// hidden is a replica with some of its objects hidden from readers: a read
// of one fails as a read of a missing object does, and listings leave them
// out. LTX files are untouched.
type hidden struct {
	storage.Client
	hide func(name string) bool
}

func (h *hidden) Unwrap() storage.Client { return h.Client }

func (h *hidden) String() string { return h.Client.String() }

// AllLTXFiles lists the LTX files, which are not hidden, as the replica
// does.
func (h *hidden) AllLTXFiles(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	if !storage.CanListAll(h.Client) {
		return storage.ListEachLevel(ctx, h.Client, useMetadata, 0)
	}
	return h.Client.(storage.AllLister).AllLTXFiles(ctx, useMetadata)
}

// withoutManifest hides the manifest.
func withoutManifest(c storage.Client) storage.Client {
	return &hidden{Client: c, hide: func(name string) bool { return name == manifest.Name }}
}

// withoutObjects hides every object: the hints and the manifest.
func withoutObjects(c storage.Client) storage.Client {
	return &hidden{Client: c, hide: func(string) bool { return true }}
}

func (h *hidden) ReadObject(ctx context.Context, name string, opts storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	if h.hide(name) {
		return nil, storage.ObjectInfo{Name: name}, fmt.Errorf("read object %s of %s: %w", name, h.Client, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist})
	}
	return h.Client.ReadObject(ctx, name, opts)
}

func (h *hidden) ListObjects(ctx context.Context, dir string) ([]storage.ObjectInfo, error) {
	objs, err := h.Client.ListObjects(ctx, dir)
	if err != nil {
		return nil, err
	}
	out := objs[:0:0]
	for _, o := range objs {
		if !h.hide(o.Name) {
			out = append(out, o)
		}
	}
	return out, nil
}

// Prices of S3 Standard requests (us-east-1, per request): LIST and PUT
// $0.005 per 1,000, GET $0.0004 per 1,000 (a GET answered 304 or 404 is
// billed as a GET). A month is 730 hours, as AWS bills.
const (
	listPrice     = 0.005 / 1000
	getPrice      = 0.0004 / 1000
	hoursPerMonth = 730
)

// newFollowCost is what a follower asked of storage in d, polling every
// poll, by kind, and what that costs a month at S3's prices.
func newFollowCost(c wrap.Counts, d, poll time.Duration) FollowCost {
	f := FollowCost{
		Seconds:     round3(d.Seconds()),
		Lists:       c.Lists + c.ObjectLists,
		LTXGets:     c.Opens,
		ObjectGets:  c.ObjectReads - c.ObjectNotModified,
		NotModified: c.ObjectNotModified,
		Requests:    c.Requests(),
	}
	if d <= 0 || poll <= 0 {
		return f
	}
	f.Polls = round3(float64(d) / float64(poll))
	hours := d.Hours()
	gets := f.LTXGets + f.ObjectGets + f.NotModified
	f.RequestsPerPoll = round3(float64(f.Requests) / f.Polls)
	f.RequestsPerHour = round3(float64(f.Requests) / hours)
	f.ListsPerHour = round3(float64(f.Lists) / hours)
	f.GetsPerHour = round3(float64(gets) / hours)
	f.DollarsPerMonth = round3((f.ListsPerHour*listPrice + f.GetsPerHour*getPrice) * hoursPerMonth)
	return f
}
