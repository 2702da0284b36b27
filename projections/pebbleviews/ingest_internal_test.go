package pebbleviews

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTableSort: the radix sort of a table's keys orders them as
// bytes.Compare does, whatever their common prefix, lengths and ties in
// the first 16 bytes after it.
func TestTableSort(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 7))
	alphabet := []byte{0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xfe, 0xff}
	for round := range 200 {
		tb := newTable('x', nil)
		common := bytes.Repeat([]byte{'p'}, rng.IntN(4))
		seen := map[string]bool{}
		var want [][]byte
		n := rng.IntN(300)
		for len(want) < n {
			k := slices.Clone(common)
			// Long shared middles force ties in the radix digits.
			if rng.IntN(2) == 0 {
				k = append(k, bytes.Repeat([]byte{'m'}, rng.IntN(20))...)
			}
			for range rng.IntN(24) {
				k = append(k, alphabet[rng.IntN(len(alphabet))])
			}
			if seen[string(k)] {
				continue
			}
			seen[string(k)] = true
			want = append(want, k)
			tb.set(k, []byte{byte(len(want))})
		}
		tb.sort()
		got := make([][]byte, 0, len(tb.ord))
		for _, o := range tb.ord {
			got = append(got, tb.key(&tb.kvs[o.i]))
		}
		slices.SortFunc(want, bytes.Compare)
		if len(got) != len(want) {
			t.Fatalf("round %d: %d keys sorted, want %d", round, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("round %d: key %d is %q, want %q", round, i, got[i], want[i])
			}
		}
		release([]*table{tb})
	}
}
