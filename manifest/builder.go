package manifest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/superfly/ltx"
)

// HintBuilder makes the hint of an LTX file from the file's bytes as they
// are written: it decodes them with ltx on the way (the pages, to find the
// interior ones) and sums what a reader will read by ranges. The file's
// writing never waits on it beyond the decoding: a file it cannot follow
// (an older frame format, an encoding error) simply gets no hint.
type HintBuilder struct {
	level int

	// Set by the decoding goroutine, read after finish.
	hint  *Hint
	err   error // why there is no hint
	total int64 // bytes written through the tee
}

// NewHintBuilder returns a builder for the hint of a file about to be
// written at level.
func NewHintBuilder(level int) *HintBuilder { return &HintBuilder{level: level} }

// Tee returns a writer that passes a file's bytes to w and to the builder;
// finish, called once the file is written (with its error, if any), waits
// for the builder to be done with them.
func (b *HintBuilder) Tee(w io.Writer) (io.Writer, func(error)) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer io.Copy(io.Discard, pr) //nolint:errcheck // drain: the writer must never block
		b.hint, b.err = b.follow(pr)
	}()
	counted := writerFunc(func(p []byte) (int, error) {
		b.total += int64(len(p))
		return pw.Write(p)
	})
	return io.MultiWriter(w, counted), func(err error) {
		if err == nil {
			err = io.EOF
		}
		pw.CloseWithError(err)
		<-done
	}
}

// Hint returns the hint of the file written through Tee, after finish, or
// an error saying why it has none.
func (b *HintBuilder) Hint() (*Hint, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.hint.Size != b.total {
		return nil, fmt.Errorf("hint of %s: %d bytes were written, the decoder read %d", b.hint.Source().Name(), b.total, b.hint.Size)
	}
	return b.hint, nil
}

// follow decodes a file with ltx, keeping what it read since the last
// frame so that each frame's bytes are known exactly (the decoder reads
// the block format frame by frame, nothing ahead).
func (b *HintBuilder) follow(r io.Reader) (*Hint, error) {
	cr := &capture{r: r}
	dec := ltx.NewDecoder(cr)
	dec.SetRetainPageIndex(false)
	if err := dec.DecodeHeader(); err != nil {
		return nil, fmt.Errorf("hint: %w", err)
	}
	cr.take()
	h := &Hint{Level: b.level, Header: dec.Header()}
	name := h.Source().Name()
	data := make([]byte, h.Header.PageSize)
	var interiorBytes int
	for {
		var ph ltx.PageHeader
		err := dec.DecodePage(&ph, data)
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("hint of %s: page %d: %w", name, len(h.Pgnos)+1, err)
		}
		frame := cr.take()
		if ph.Flags&ltx.PageHeaderFlagSize == 0 || len(frame) < ltx.PageHeaderSize+4 ||
			int(binary.BigEndian.Uint32(frame[ltx.PageHeaderSize:]))+ltx.PageHeaderSize+4 != len(frame) {
			return nil, fmt.Errorf("hint of %s: page %d is not in the block frame format", name, ph.Pgno)
		}
		ord := uint32(len(h.Pgnos))
		head := cr.n-int64(len(frame)) < HeadFrameBytes
		interior := IsInteriorPage(ph.Pgno, data) && interiorBytes+len(frame) <= MaxHintFrameBytes
		if head || interior {
			h.Frames = append(h.Frames, Frame{Ordinal: ord, Data: bytes.Clone(frame)})
		}
		if interior {
			interiorBytes += len(frame)
		}
		h.Pgnos = append(h.Pgnos, ph.Pgno)
		h.Sizes = append(h.Sizes, uint32(len(frame)))
		h.Sums = append(h.Sums, Sum(frame))
	}
	if err := dec.Close(); err != nil {
		return nil, fmt.Errorf("hint of %s: %w", name, err)
	}
	if _, err := io.Copy(io.Discard, cr); err != nil { // nothing should follow the trailer; if anything does, it counts
		return nil, err
	}
	tail := cr.take()
	h.Size = cr.n
	if len(tail) < ltx.TrailerSize {
		return nil, fmt.Errorf("hint of %s: no trailer", name)
	}
	if err := h.Trailer.UnmarshalBinary(tail[len(tail)-ltx.TrailerSize:]); err != nil {
		return nil, fmt.Errorf("hint of %s: %w", name, err)
	}
	if h.Trailer.FileChecksum != dec.Trailer().FileChecksum {
		return nil, fmt.Errorf("hint of %s: the trailer read is not the one decoded", name)
	}
	return h, nil
}

// capture keeps the bytes read from r since the last take.
type capture struct {
	r   io.Reader
	buf []byte
	n   int64 // bytes read in all
}

func (c *capture) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.buf = append(c.buf, p[:n]...)
	c.n += int64(n)
	return n, err
}

// take returns what was read since the last take and forgets it.
func (c *capture) take() []byte {
	b := c.buf
	c.buf = c.buf[len(c.buf):]
	return b
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// BuildHint builds the hint of the LTX file read from r, stored at level:
// for a file already written (a Litestream file, a spooled upload).
func BuildHint(level int, r io.Reader) (*Hint, error) {
	b := NewHintBuilder(level)
	w, finish := b.Tee(io.Discard)
	_, err := io.Copy(w, r)
	finish(err)
	if err != nil {
		return nil, err
	}
	return b.Hint()
}
