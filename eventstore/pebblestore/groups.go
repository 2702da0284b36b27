package pebblestore

import (
	"math/bits"
	"sync/atomic"
)

// GroupBuckets are the upper bounds (inclusive) of GroupStats.Buckets, in
// events per group: powers of two up to the most a group can hold within
// its 1,024 appends of up to MaxEventsPerAppend events each, the last
// bucket holding every larger group.
var GroupBuckets = func() (b [groupBucketCount]uint64) {
	for i := range b {
		b[i] = 1 << i
	}
	return b
}()

const groupBucketCount = 21 // 1 .. 2^20 (1,048,576 events)

// GroupStats is what the sequencer has made durable since Open: one commit
// group is one record in the durable log and one fdatasync, so Events over
// Groups is the figure that explains append throughput (it is near the
// number of concurrent writers when the store keeps up with the disk).
type GroupStats struct {
	Groups uint64 // groups committed (groups that appended nothing are not counted)
	Events uint64 // events in them
	// Buckets[i] counts the groups of more than GroupBuckets[i-1] and at
	// most GroupBuckets[i] events (not cumulative).
	Buckets [groupBucketCount]uint64
}

// GroupStats returns the commit groups made durable since Open. It is safe
// to call at any time; the counters are read one by one, so a snapshot
// taken while appends commit may be a group apart between its fields.
func (s *Store) GroupStats() GroupStats {
	var st GroupStats
	st.Groups = s.groups.groups.Load()
	st.Events = s.groups.events.Load()
	for i := range st.Buckets {
		st.Buckets[i] = s.groups.buckets[i].Load()
	}
	return st
}

// groupCounters are written by the sequencer only.
type groupCounters struct {
	groups, events atomic.Uint64
	buckets        [groupBucketCount]atomic.Uint64
}

// add counts one committed group of events events (events >= 1).
func (g *groupCounters) add(events uint64) {
	g.groups.Add(1)
	g.events.Add(events)
	// The smallest power of two >= events: bucket ceil(log2(events)).
	i := bits.Len64(events - 1)
	g.buckets[min(i, groupBucketCount-1)].Add(1)
}
