package bytesize

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ltxvfs/ltxvfs/storage"
)

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// Parse parses a byte size: a whole number of bytes ("1048576") or a
// number with a unit, binary (KiB, MiB, GiB, TiB; K, M, G, T alone are
// binary too) or decimal (KB, MB, GB, TB), in any case: "64MiB", "1.5GiB",
// "500MB".
func Parse(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" || strings.ContainsAny(t, "einx+-") {
		return 0, fmt.Errorf("size %q: want bytes or a number with a unit, like 64MiB, 1GiB or 500MB", storage.Shown(s))
	}
	n := f * float64(mult)
	if n < 1 || n > 1<<62 {
		return 0, fmt.Errorf("size %q: out of range (want at least 1 byte)", storage.Shown(s))
	}
	return int64(n), nil
}
