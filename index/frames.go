package index

import (
	"github.com/superfly/ltx"
)

// Frame is one page's frame (page header and compressed block) as stored in
// an LTX file or in a hint: a page cache decodes and checks it as it does a
// frame it reads itself.
type Frame struct {
	Pgno uint32
	Data []byte
}

// FrameSink receives frames of f that an index read along with f's page
// index: all of a small file, the first frames of a larger one, and the
// frames of its hint. It gets only the pages that the version built with f
// reads from f, so that a page cache keyed by (file, page) fills with
// pages a query will look up. It is called synchronously, from Update, At,
// Replan or Probe; frames are only valid during the call.
type FrameSink func(f *File, frames []Frame)

// pendingFrames are the frames read along with a file's page index.
type pendingFrames struct {
	head    []byte  // the first bytes of the file (the whole of a small one)
	hint    []Frame // the hint's frames, checked
	hintErr error   // why a hint that was read was dropped
}

// deliver hands the frames read with the files of a version's plan (fxs)
// to the sink, each file's once, for the pages that v reads from that file
// (v may keep reading a page from the file an earlier version read it
// from: see adopt; the page cache holds it there).
func (c *catalog) deliver(v *Version, fxs []*fileIndex) {
	sink := c.sink
	for _, fx := range fxs {
		p := fx.pending.Swap(nil)
		if p == nil || sink == nil {
			continue
		}
		if p.hintErr != nil {
			c.log.Warn("ltx index: dropped a hint that does not check out; reading its pages from the file", "replica", c.client.String(), "err", p.hintErr)
		}
		var out []Frame
		keep := func(pgno uint32, data []byte) {
			if e, ok := v.Lookup(pgno); ok && e.File == fx.file {
				out = append(out, Frame{Pgno: pgno, Data: data})
			}
		}
		off, headMax := int64(ltx.HeaderSize), uint32(0)
		for j, pgno := range fx.pgnos {
			end := off + int64(fx.sizes[j])
			if end > int64(len(p.head)) {
				break
			}
			if err := fx.file.CheckFrame(pgno, p.head[off:end]); err != nil {
				// Not kept: a query that needs the page reads it and
				// fails with the same error.
				c.log.Warn("ltx index: a frame read with a page index does not match its checksum", "replica", c.client.String(), "err", err)
				break
			}
			keep(pgno, p.head[off:end])
			off, headMax = end, pgno
		}
		if hintBytes(p.hint) <= c.maxHint {
			for _, f := range p.hint {
				if f.Pgno > headMax {
					keep(f.Pgno, f.Data)
				}
			}
		}
		if len(out) > 0 {
			sink(fx.file, out)
		}
	}
}

// hintBytes is the size of a hint's frames.
func hintBytes(frames []Frame) int64 {
	var n int64
	for _, f := range frames {
		n += int64(len(f.Data))
	}
	return n
}
