package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pebblelog"
)

// Load implements eventstore.Store. It returns only durable events: those at
// or below the published feed head.
func (s *Store) Load(ctx context.Context, streamID string, from int64) ([]eventstore.Event, error) {
	if streamID == "" || len(streamID) > MaxIDLen {
		return nil, domain.Errorf(domain.Invalid, "eventstore/pebblestore: load: stream ID must be 1..%d bytes", MaxIDLen)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []eventstore.Event
	var recs records
	err := s.read(func() error {
		head := s.head.Load()
		keys := make([]byte, 0, 2*(10+len(streamID)))
		keys = streamKey(keys, streamID, uint64(max(from, 1)))
		lo := keys[:len(keys):len(keys)]
		hi := streamKey(keys[len(keys):], streamID, math.MaxUint64)
		it, err := s.iters.get(s.db, head, lo, hi)
		if err != nil {
			return storageErr("load", err)
		}
		defer s.iters.put(it, head)
		for ok := it.First(); ok; ok = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				return storageErr("load", err)
			}
			pos, err := recordPosition(v)
			if err != nil {
				return corruptErr("load", it.Key())
			}
			if pos > head {
				break // committed by a group whose fsync has not returned yet
			}
			if recs.raw == nil {
				recs.raw = make([]byte, 0, 2048)
				recs.ends = make([]int, 0, 8)
			}
			recs.add(v)
		}
		if err := it.Error(); err != nil {
			return storageErr("load", err)
		}
		if len(recs.ends) > 0 {
			out = make([]eventstore.Event, 0, len(recs.ends))
		}
		if out, err = recs.decode(out); err != nil {
			return domain.Errorf(domain.Internal, "eventstore/pebblestore: load: corrupt record in stream %q", streamID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadFeed implements eventstore.Feed. limit is capped at MaxFeedPage.
func (s *Store) ReadFeed(ctx context.Context, after uint64, limit int) ([]eventstore.Event, error) {
	out, _, err := s.readFeed(ctx, after, limit, nil, nil, false)
	return out, err
}

// ReadFeedInto is ReadFeed reusing the memory of an earlier page: events
// and raw are the two slices an earlier ReadFeedInto returned (or nil), and
// their contents are overwritten. It returns the page and the buffer its
// events' Data share, to pass to the next call. A reader that goes through
// the whole feed (a rebuild) then allocates little per page: the records'
// bytes are read into raw, and the page's strings are copied into one
// allocation of their own.
//
// The rule for the caller: once events or raw is passed back, the Data of
// the page read into them has changed (keep a copy of any Data needed
// later); the events' strings never change and may be kept (each keeps its
// page's strings alive).
func (s *Store) ReadFeedInto(ctx context.Context, after uint64, limit int, events []eventstore.Event, raw []byte) ([]eventstore.Event, []byte, error) {
	return s.readFeed(ctx, after, limit, events[:0], raw[:0], true)
}

// readFeed reads a page into events and raw; with reuse, raw may be one
// the caller will pass again, so no string may point into it.
func (s *Store) readFeed(ctx context.Context, after uint64, limit int, events []eventstore.Event, raw []byte, reuse bool) ([]eventstore.Event, []byte, error) {
	if limit < 1 {
		return nil, raw, domain.Errorf(domain.Invalid, "eventstore/pebblestore: read feed: limit %d (must be at least 1)", limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, raw, err
	}
	limit = min(limit, MaxFeedPage)
	var out []eventstore.Event
	err := s.read(func() error {
		head := s.head.Load()
		if after >= head {
			return nil
		}
		last := head
		if head-after > uint64(limit) {
			last = after + uint64(limit)
		}
		lo := feedKey(make([]byte, 0, 18), after+1)
		hi := feedKey(lo[len(lo):], last+1)
		it, err := s.iters.get(s.db, head, lo, hi)
		if err != nil {
			return storageErr("read feed", err)
		}
		defer s.iters.put(it, head)
		n := int(last - after)
		recs := records{raw: raw, ends: make([]int, 0, n)}
		for ok := it.First(); ok; ok = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				return storageErr("read feed", err)
			}
			if cap(recs.raw) == 0 {
				recs.raw = make([]byte, 0, n*(len(v)+64))
			}
			recs.add(v)
		}
		raw = recs.raw
		if err := it.Error(); err != nil {
			return storageErr("read feed", err)
		}
		if cap(events) < len(recs.ends) {
			events = make([]eventstore.Event, 0, len(recs.ends))
		}
		if reuse {
			out, err = recs.decodeOwned(events[:0])
		} else {
			out, err = recs.decode(events[:0])
		}
		if err != nil {
			return domain.Errorf(domain.Internal, "eventstore/pebblestore: read feed: corrupt record after position %d", after)
		}
		for i := range out {
			if out[i].Position != after+1+uint64(i) {
				return domain.Errorf(domain.Internal, "eventstore/pebblestore: read feed: position %d missing", after+1+uint64(i))
			}
		}
		if len(out) != n {
			return domain.Errorf(domain.Internal, "eventstore/pebblestore: read feed: position %d missing", after+1+uint64(len(out)))
		}
		return nil
	})
	if err != nil {
		return nil, raw, err
	}
	return out, raw, nil
}

// Head implements eventstore.Feed.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.checkOpen(ctx); err != nil {
		return 0, err
	}
	return s.head.Load(), nil
}

// WaitFeed implements eventstore.Feed. It wakes as soon as a commit publishes
// a head beyond after (no polling).
func (s *Store) WaitFeed(ctx context.Context, after uint64) error {
	for {
		ch := *s.notify.Load() // before reading the head: a commit in between closes ch
		if s.head.Load() > after {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.quit:
			return eventstore.ErrClosed
		}
	}
}

func validConsumer(op, consumer string) error {
	if consumer == "" || len(consumer) > MaxIDLen {
		return domain.Errorf(domain.Invalid, "eventstore/pebblestore: %s: consumer name must be 1..%d bytes", op, MaxIDLen)
	}
	return nil
}

// Checkpoint implements eventstore.Checkpoints.
func (s *Store) Checkpoint(ctx context.Context, consumer string) (uint64, error) {
	if err := validConsumer("checkpoint", consumer); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var pos uint64
	err := s.read(func() error {
		v, closer, err := s.db.Get(checkpointKey(consumer))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		}
		if err != nil {
			return storageErr("checkpoint", err)
		}
		defer closer.Close()
		if len(v) != 8 {
			return corruptErr("checkpoint", checkpointKey(consumer))
		}
		pos = binary.BigEndian.Uint64(v)
		return nil
	})
	return pos, err
}

// SaveCheckpoint implements eventstore.Checkpoints. The write is fsynced
// before it returns. A position beyond the feed head is rejected.
func (s *Store) SaveCheckpoint(ctx context.Context, consumer string, pos uint64) error {
	if err := validConsumer("save checkpoint", consumer); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.read(func() error {
		if head := s.head.Load(); pos > head {
			return domain.Errorf(domain.Invalid, "eventstore/pebblestore: save checkpoint: position %d is beyond the feed head %d", pos, head)
		}
		if err := pebblelog.CheckSpace("eventstore/pebblestore", "save checkpoint", s.dir); err != nil {
			return err
		}
		if err := s.db.Set(checkpointKey(consumer), binary.BigEndian.AppendUint64(nil, pos), pebble.Sync); err != nil {
			return storageErr("save checkpoint", err)
		}
		return nil
	})
}
