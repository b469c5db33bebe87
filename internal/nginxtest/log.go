package nginxtest

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/nginx"
)

// Request is one line of an access log.
type Request struct {
	Method string
	URI    string // as requested, query included
	Status int
	// Range, IfNoneMatch and IfModifiedSince are the request's headers,
	// empty when absent.
	Range, IfNoneMatch, IfModifiedSince string
	// CacheStatus is the caching proxy's verdict (HIT, MISS, REVALIDATED,
	// EXPIRED, ...), empty at the origin.
	CacheStatus string
	// Bytes is the length of the body sent.
	Bytes int64
}

// Log names an access log.
type Log string

const (
	Origin Log = "origin.log" // the origin server's
	Cache  Log = "cache.log"  // the caching proxy's
)

// awaitTimeout bounds the wait for requests to reach a log.
const awaitTimeout = 5 * time.Second

// Requests returns the requests of a log, without the readiness probes,
// once it holds at least atLeast of them: nginx writes a request's line
// after it has answered, so a test that has just had an answer may not
// find its line yet.
func (s *Server) Requests(tb testing.TB, log Log, atLeast int) []Request {
	tb.Helper()
	deadline := time.Now().Add(awaitTimeout)
	for {
		reqs := s.readLog(tb, log)
		if len(reqs) >= atLeast {
			return reqs
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s holds %d requests after %v, want at least %d", log, len(reqs), awaitTimeout, atLeast)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Server) readLog(tb testing.TB, log Log) []Request {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir(), string(log)))
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		tb.Fatal(err)
	}
	var reqs []Request
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 8 {
			continue // a line still being written
		}
		for i, v := range f {
			if v == "-" {
				f[i] = "" // nginx logs an empty variable as "-"
			}
		}
		if f[1] == nginx.ProbePath {
			continue
		}
		status, _ := strconv.Atoi(f[2])
		n, _ := strconv.ParseInt(f[7], 10, 64)
		reqs = append(reqs, Request{Method: f[0], URI: f[1], Status: status, Range: f[3], IfNoneMatch: f[4], IfModifiedSince: f[5], CacheStatus: f[6], Bytes: n})
	}
	return reqs
}
