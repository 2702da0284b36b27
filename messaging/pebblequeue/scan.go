package pebblequeue

import (
	"math"

	"github.com/cockroachdb/pebble/v2"
)

// put writes rec into queue q in batch and lowers q.scanFrom to cover its
// index key (even if the batch is then not committed: a lower bound that is
// too low only costs a longer scan). Call with b.mu held.
func (q *Queue) put(batch *pebble.Batch, rec *record) error {
	q.lower(max(rec.VisibleAt, 0))
	if err := batch.Set(msgKey(q.name, rec.ID), encodeRecord(nil, rec), nil); err != nil {
		return err
	}
	return batch.Set(visKey(q.name, rec.VisibleAt, rec.ID), nil, nil)
}

// lower keeps q.scanFrom and the gap true before a key at visible-at time at
// is written. Call with b.mu held.
func (q *Queue) lower(at int64) {
	if q.gapStart <= at && at < q.gapEnd {
		q.gapStart = at + 1 // keep the part above the new key
	}
	if at >= q.scanFrom {
		return
	}
	// Nothing live lies in [at+1, scanFrom): it becomes the gap, merged
	// with the old one when they touch (both are free of live keys).
	gs, ge := at+1, q.scanFrom
	if q.gapStart < q.gapEnd && q.gapStart <= ge && q.gapEnd >= gs {
		gs, ge = min(gs, q.gapStart), max(ge, q.gapEnd)
	}
	if ge > gs {
		q.gapStart, q.gapEnd = gs, ge
	}
	q.scanFrom = at
}

// scanRanges returns the ranges of visible-at times a receive scans, in
// order: from scanFrom to the end of the index, less the gap. Call with
// b.mu held.
func (q *Queue) scanRanges() [][2]int64 {
	from, end := q.scanFrom, int64(math.MaxInt64)
	if q.gapStart >= q.gapEnd || q.gapEnd <= from {
		return [][2]int64{{from, end}}
	}
	if q.gapStart <= from {
		return [][2]int64{{q.gapEnd, end}}
	}
	return [][2]int64{{from, q.gapStart}, {q.gapEnd, end}}
}
