package pebblestore

import (
	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/eventstore"
)

// WriteLegacy writes events to stream as the store wrote them before the
// audit chain (record format 1, no hashes), at versions from+1.. and the
// feed positions after the head. The store must be reopened to see them.
func WriteLegacy(s *Store, stream string, from int64, events ...eventstore.Event) error {
	b := s.db.NewBatch()
	defer b.Close()
	pos := s.head.Load()
	for i := range events {
		pos++
		rec := append([]byte{recordFormat1}, make([]byte, recordHead-1)...)
		rec = encodeRecordTail(rec, recordFormat1, stream, &events[i])
		setRecordPosition(rec, pos, from+int64(i)+1)
		s.set(b, streamKey(nil, stream, uint64(from+int64(i)+1)), rec)
		s.set(b, feedKey(nil, pos), rec)
	}
	s.head.Store(pos)
	return b.Commit(pebble.Sync)
}

// SetMigrateBatch sets how many events Migrate commits at once.
func SetMigrateBatch(n int) { migrateBatch = n }

// WithDurableLogSize sets the size of the store's durable log (durable.go),
// so that a test wraps it around.
func WithDurableLogSize(n int64) Option {
	return func(c *config) { c.logSize = n }
}

// InPebble reports whether the event at version of stream is in pebble,
// published or not.
func InPebble(s *Store, stream string, version uint64) bool {
	v, closer, err := s.db.Get(streamKey(nil, stream, version))
	if err != nil {
		return false
	}
	_ = v
	_ = closer.Close()
	return true
}

// RefuseApply makes the applier answer err instead of applying a group, as
// pebble would on a commit it refuses.
func RefuseApply(s *Store, err error) { s.refuseApply.Store(&err) }
