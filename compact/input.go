package compact

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/retry"
	"github.com/ltxvfs/ltxvfs/storage"
)

// inputBuffer is how much of an input is read from storage at a time, and
// handed to its verifier at a time.
const inputBuffer = 16 << 10

// errCut ends a verifier that was not given its whole file: what it
// reports then says nothing about the file.
var errCut = errors.New("input no longer read")

// Input is one file of a compaction or a restore, read whole from storage.
// Its bytes reach the ltx Compactor and, through a pipe, a second
// ltx.Decoder that verifies them as they stream: every page frame, then
// the file checksum. The Compactor's own decoders notice a damaged input
// too, but say only its position ("close reader 5"); the verifier makes
// the input's reads fail with its name, and the page when a frame cannot
// be decoded, at the latest when the read reaches the end of the file.
type Input struct {
	info *ltx.FileInfo
	name string
	hdr  ltx.Header
	r    io.Reader // for the Compactor: the header peeked, then the rest

	rc   io.ReadCloser
	pw   *io.PipeWriter
	done chan struct{}
	err  error // what the verifier found wrong with the file, set before done closes
}

// Open opens every file whole, each with its verifier, and reads each
// header (see readHeaders). closeAll, which may be called again, stops the
// verifiers and closes the files.
func Open(ctx context.Context, c storage.Client, infos []*ltx.FileInfo) (ins []*Input, closeAll func(), err error) {
	closeAll = sync.OnceFunc(func() {
		for _, in := range ins {
			in.stop()
			in.rc.Close()
		}
	})
	for _, info := range infos {
		var rc io.ReadCloser
		err := retry.Do(ctx, func() (err error) {
			rc, err = c.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
			return err
		})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		ins = append(ins, newInput(info, rc))
	}
	if err := readHeaders(ins); err != nil {
		closeAll()
		return nil, nil, err
	}
	return ins, closeAll, nil
}

func newInput(info *ltx.FileInfo, rc io.ReadCloser) *Input {
	pr, pw := io.Pipe()
	in := &Input{
		info: info,
		name: storage.FileName(info.Level, info.MinTXID, info.MaxTXID),
		rc:   rc,
		pw:   pw,
		done: make(chan struct{}),
	}
	in.r = bufio.NewReaderSize(in, inputBuffer)
	go in.verify(pr)
	return in
}

// readHeaders reads each input's header, leaving it to be read again, and
// checks what can be checked at once: a valid header, the TXIDs its name
// says, one page size for all.
func readHeaders(ins []*Input) error {
	for _, in := range ins {
		hdr, peeked, err := ltx.PeekHeader(in.r)
		if err == nil {
			err = hdr.Validate()
		}
		if err != nil {
			return fmt.Errorf("read header of %s: %w", in.name, err)
		}
		if hdr.MinTXID != in.info.MinTXID || hdr.MaxTXID != in.info.MaxTXID {
			return fmt.Errorf("read header of %s: it holds TXIDs %s-%s, not those of its name", in.name, hdr.MinTXID, hdr.MaxTXID)
		}
		if first := ins[0]; in != first && hdr.PageSize != first.hdr.PageSize {
			return fmt.Errorf("read header of %s: pages of %d bytes, %s's are of %d", in.name, hdr.PageSize, first.name, first.hdr.PageSize)
		}
		in.r, in.hdr = peeked, hdr
	}
	return nil
}

// Info is the file as listed.
func (in *Input) Info() *ltx.FileInfo { return in.info }

// Header is the file's header, as read by Open.
func (in *Input) Header() ltx.Header { return in.hdr }

// Name is "L<level>/<min>-<max>.ltx", for messages.
func (in *Input) Name() string { return in.name }

// Read reads the file from storage for the Compactor, handing each byte to
// the verifier on the way.
func (in *Input) Read(p []byte) (int, error) {
	n, err := in.rc.Read(p)
	if n > 0 {
		if _, werr := in.pw.Write(p[:n]); werr != nil {
			return 0, in.failure(werr) // the verifier found the file damaged, or was stopped
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		in.pw.Close()
		<-in.done
		if in.err != nil {
			return n, in.err
		}
	default:
		err = fmt.Errorf("read %s: %w", in.name, err)
		in.pw.CloseWithError(err)
	}
	return n, err
}

// failure is what the verifier found, once it has stopped, or else err.
func (in *Input) failure(err error) error {
	<-in.done
	if in.err != nil {
		return in.err
	}
	return err
}

// stop ends the verifier and waits for it: what it found in the bytes it
// was given stays in in.err.
func (in *Input) stop() {
	in.pw.CloseWithError(errCut)
	<-in.done
}

// verify decodes the file from pr as the Compactor reads it.
func (in *Input) verify(pr *io.PipeReader) {
	defer close(in.done)
	src := &cutReader{r: pr}
	dec := ltx.NewDecoder(bufio.NewReaderSize(src, inputBuffer))
	dec.SetRetainPageIndex(false)
	err := in.decode(dec)
	if err != nil && !src.cut {
		in.err = err
	}
	pr.CloseWithError(errCut) // the Compactor's next read fails
}

// decode reads the file through dec, saying which page of it could not be
// read.
func (in *Input) decode(dec *ltx.Decoder) error {
	if err := dec.DecodeHeader(); err != nil {
		return fmt.Errorf("read header of %s: %w", in.name, err)
	}
	data := make([]byte, dec.Header().PageSize)
	var prev uint32
	for {
		var ph ltx.PageHeader
		err := dec.DecodePage(&ph, data)
		switch {
		case err == io.EOF:
			if err := dec.Close(); err != nil {
				return fmt.Errorf("verify %s: %w", in.name, err)
			}
			return nil
		case err != nil && ph.Pgno != 0 && ph.Pgno > prev:
			return fmt.Errorf("read page %d of %s: %w", ph.Pgno, in.name, err)
		case err != nil && prev != 0:
			return fmt.Errorf("read the page after page %d of %s: %w", prev, in.name, err)
		case err != nil:
			return fmt.Errorf("read the first page of %s: %w", in.name, err)
		}
		prev = ph.Pgno
	}
}

// cutReader notes that its reader failed other than at the end: the
// decoder's error then comes from the cut, not from the file.
type cutReader struct {
	r   io.Reader
	cut bool
}

func (c *cutReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		c.cut = true
	}
	return n, err
}

// damaged stops every verifier and returns what the first damaged input's
// found (nil if none): the error to report when a compaction or a restore
// fails, as the Compactor's own names no file.
func damaged(ins []*Input) error {
	for _, in := range ins {
		in.stop()
	}
	for _, in := range ins {
		if in.err != nil {
			return in.err
		}
	}
	return nil
}
