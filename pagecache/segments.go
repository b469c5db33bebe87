package pagecache

import (
	"math"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// probationShare: the probation segment keeps at least 1/probationShare of
// the budget for itself before the protected segment gives up pages.
const probationShare = 4

// segments holds pages in two byte-bounded LRU segments (golang-lru/v2), a
// segmented LRU: a page read for the first time, by a miss or by readahead,
// enters on probation; a page read again moves to the protected segment,
// as do pages known to be hot when they arrive (B-tree interior pages from
// hints, the first pages of files). When the budget is full, the oldest
// page on probation goes first, unless probation holds less than its share
// of the budget; then the oldest protected page goes. A page read ahead
// (addAhead) has not been read yet: its first read leaves it on probation,
// where it was, and only a second promotes it. So a scan that reads each
// page once, read ahead or not, cycles through probation and never pushes
// out the pages point lookups keep using.
//
// It is not safe for concurrent use (Cache.mu guards it).
type segments struct {
	max                  int64
	probation, protected *simplelru.LRU[Key, []byte]
	probationUsed, used  int64
	evictions            int64
	unread               map[Key]struct{} // on probation, read ahead and not read since
}

func newSegments(max int64) *segments {
	// Bounded by bytes, not by count: the count limit is never reached.
	probation, err := simplelru.NewLRU[Key, []byte](math.MaxInt, nil)
	if err != nil {
		panic(err) // notest: the size is positive
	}
	protected, err := simplelru.NewLRU[Key, []byte](math.MaxInt, nil)
	if err != nil {
		panic(err) // notest: the size is positive
	}
	return &segments{max: max, probation: probation, protected: protected, unread: map[Key]struct{}{}}
}

// get returns a page, making it the most recent of the protected segment;
// ahead tells that it is the first read of a page read ahead.
func (s *segments) get(k Key) (page []byte, ok, ahead bool) {
	if page, ok := s.protected.Get(k); ok {
		return page, true, false
	}
	page, ok = s.probation.Peek(k)
	if !ok {
		return nil, false, false
	}
	if _, ok := s.unread[k]; ok {
		// Its first read. Its recency stays that of its arrival, so that
		// the pages a scan has read go before those read ahead of it.
		delete(s.unread, k)
		return page, true, true
	}
	s.probation.Remove(k)
	s.probationUsed -= cost(page)
	s.protected.Add(k, page)
	return page, true, false
}

// peek returns a page without changing its recency.
func (s *segments) peek(k Key) ([]byte, bool) {
	if page, ok := s.protected.Peek(k); ok {
		return page, true
	}
	return s.probation.Peek(k)
}

func (s *segments) contains(k Key) bool { return s.protected.Contains(k) || s.probation.Contains(k) }

func (s *segments) len() int { return s.protected.Len() + s.probation.Len() }

// addAhead keeps a page read ahead of any query on probation, unread.
func (s *segments) addAhead(k Key, page []byte) {
	if s.add(k, page, false) && s.probation.Contains(k) {
		s.unread[k] = struct{}{}
	}
}

// add keeps a page on probation, or protected, and evicts until the budget
// holds, reporting whether it was added. A page held already stays where
// it is: pages are immutable.
func (s *segments) add(k Key, page []byte, protected bool) bool {
	if cost(page) > s.max || s.contains(k) {
		return false
	}
	if protected {
		s.protected.Add(k, page)
	} else {
		s.probation.Add(k, page)
		s.probationUsed += cost(page)
	}
	s.used += cost(page)
	for s.used > s.max {
		var old []byte
		if s.probation.Len() > 0 && (s.probationUsed > s.max/probationShare || s.protected.Len() == 0) {
			var k Key
			k, old, _ = s.probation.RemoveOldest()
			s.probationUsed -= cost(old)
			delete(s.unread, k)
		} else {
			_, old, _ = s.protected.RemoveOldest()
		}
		s.used -= cost(old)
		s.evictions++
	}
	return true
}
