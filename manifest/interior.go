package manifest

// IsInteriorPage reports whether a database page is a B-tree interior page
// (table or index), judged from its page-type byte: at offset 100 on page 1,
// after the database header, else at offset 0.
func IsInteriorPage(pgno uint32, data []byte) bool {
	off := 0
	if pgno == 1 {
		off = 100
	}
	if len(data) <= off {
		return false
	}
	t := data[off]
	return t == 0x02 || t == 0x05
}
