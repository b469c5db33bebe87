package compact

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/superfly/ltx"
)

// To runs the ltx Compactor over ins into w. The output carries a
// checksum if the last input does: the Compactor gives it the last input's
// post-apply checksum, and the first input's pre-apply checksum, which a
// snapshot (MinTXID 1) never has anyway. When an input is damaged, the
// error is its verifier's, which names it.
func To(ctx context.Context, w io.Writer, ins []*Input) error {
	first, last := ins[0], ins[len(ins)-1]
	if first.hdr.MinTXID != 1 && first.hdr.NoChecksum() != last.hdr.NoChecksum() {
		return fmt.Errorf("compact %s..%s: files with and without checksums cannot be compacted together", first.name, last.name)
	}
	rdrs := make([]io.Reader, len(ins))
	for i, in := range ins {
		rdrs[i] = in.r
	}
	cmp, err := ltx.NewCompactor(w, rdrs)
	if err != nil {
		return err
	}
	if last.hdr.NoChecksum() {
		cmp.HeaderFlags = ltx.HeaderFlagNoChecksum
	}
	if err := cmp.Compact(ctx); err != nil {
		if derr := damaged(ins); derr != nil {
			return derr
		}
		return fmt.Errorf("compact %s..%s: %w", first.name, last.name, err)
	}
	return nil
}

// Bytes compacts LTX files held in memory (test fixtures, generated
// histories), with the ltx Compactor and no verifier.
func Bytes(files ...[]byte) ([]byte, error) {
	rdrs := make([]io.Reader, len(files))
	for i, f := range files {
		rdrs[i] = bytes.NewReader(f)
	}
	var buf bytes.Buffer
	c, err := ltx.NewCompactor(&buf, rdrs)
	if err != nil {
		return nil, err
	}
	if err := c.Compact(context.Background()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
