package pebblestore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pebblelog"
)

// Group limits: the sequencer stops draining waiting appends into one batch
// beyond these, so that one huge group does not delay everyone behind it.
const (
	maxGroupAppends = 1024
	maxGroupBytes   = 16 << 20
)

// yieldMax bounds how often the sequencer yields the processor while forming
// a group smaller than the previous one. Writers answered by the previous
// commit are typically runnable but not yet running (on two cores, with the
// sequencer busy); a runtime.Gosched lets them hand in their next append, so
// that they share the next fsync instead of waiting a whole fsync for the one
// after. It is not a delay: with nothing else runnable it returns at once,
// and a lone writer (previous group of one) never yields. What it gains is
// measured in BENCHMARKS.md ("Event store", the yields).
const yieldMax = 3

// request is one append on its way through the sequencer.
type request struct {
	ctx      context.Context
	key      string // idempotency key, "" for none
	stream   string
	expected int64
	buf      []byte // the encoded records, back to back
	ends     []int  // end offset of each record in buf

	// Set by the sequencer before it closes done.
	res   eventstore.Result
	err   error
	dupOf *request // an earlier append with the same key in the same group
	done  chan struct{}
}

// sequencerState is owned by the sequencer goroutine.
type sequencerState struct {
	next  uint64              // position of the next event
	idem  map[string]*request // idempotency keys written by the current group
	group []*request
	last  int // size of the previous group
	key   []byte
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	return s.append(ctx, "", streamID, expected, events)
}

// AppendIdempotent implements eventstore.Store. The key record is written in
// the same atomic batch as the events; a repeat of the key, even one in the
// same commit group as the first use, returns the first result with
// Duplicate set and appends nothing.
func (s *Store) AppendIdempotent(ctx context.Context, key, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	if key == "" || len(key) > MaxIDLen {
		return eventstore.Result{}, domain.Errorf(domain.Invalid, "eventstore/pebblestore: append: idempotency key must be 1..%d bytes", MaxIDLen)
	}
	return s.append(ctx, key, streamID, expected, events)
}

// append validates and encodes in the caller's goroutine, then waits for the
// sequencer. When ctx ends while waiting, append returns ctx's error; the
// append may then still have been committed (as with any timed-out write),
// and an idempotency key is the way to retry safely.
func (s *Store) append(ctx context.Context, key, stream string, expected int64, events []eventstore.Event) (eventstore.Result, error) {
	if err := s.checkOpen(ctx); err != nil {
		return eventstore.Result{}, err
	}
	if errp := s.failed.Load(); errp != nil {
		return eventstore.Result{}, *errp
	}
	r, err := newRequest(ctx, key, stream, expected, events)
	if err != nil {
		return eventstore.Result{}, err
	}
	select {
	case s.reqs <- r:
	case <-s.quit:
		return eventstore.Result{}, eventstore.ErrClosed
	case <-ctx.Done():
		return eventstore.Result{}, ctx.Err()
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return eventstore.Result{}, fmt.Errorf("eventstore/pebblestore: append: gave up waiting (it may still commit): %w", ctx.Err())
	}
}

// limits are the embedded store's bounds on one append.
var limits = eventstore.Limits{MaxIDLen: MaxIDLen, MaxEvents: MaxEventsPerAppend, MaxDataLen: MaxEventSize, MaxVersion: math.MaxInt64}

func newRequest(ctx context.Context, key, stream string, expected int64, events []eventstore.Event) (*request, error) {
	if err := eventstore.ValidateAppend("eventstore/pebblestore: append", stream, expected, events, limits); err != nil {
		return nil, err
	}
	size := 0
	for i := range events {
		e := &events[i]
		size += 64 + len(stream) + len(e.EventID) + len(e.Type) + len(e.Data) +
			len(e.Metadata.CorrelationID) + len(e.Metadata.CausationID) + len(e.Metadata.RequestID)
	}
	r := &request{
		ctx:      ctx,
		key:      key,
		stream:   stream,
		expected: expected,
		buf:      make([]byte, 0, size),
		ends:     make([]int, len(events)),
		done:     make(chan struct{}),
	}
	for i := range events {
		r.buf = encodeRecord(r.buf, stream, &events[i])
		r.ends[i] = len(r.buf)
	}
	return r, nil
}

// sequence is the sequencer goroutine: it takes every append waiting, and
// commits them as one group, until Close.
func (s *Store) sequence() {
	defer close(s.done)
	s.seq.idem = make(map[string]*request)
	for {
		var first *request
		select {
		case first = <-s.reqs:
		case <-s.quit:
			return
		}
		group := append(s.seq.group[:0], first)
		bytes := len(first.buf)
		yields := 0
	drain:
		for len(group) < maxGroupAppends && bytes < maxGroupBytes {
			select {
			case r := <-s.reqs:
				group = append(group, r)
				bytes += len(r.buf)
			default:
				if len(group) < s.seq.last && yields < yieldMax {
					yields++
					runtime.Gosched()
					continue
				}
				break drain
			}
		}
		s.seq.last = len(group)
		s.commitGroup(group)
		clear(group)
		s.seq.group = group[:0]
	}
}

// commitGroup checks, writes and durably commits one group, then answers
// every append in it.
func (s *Store) commitGroup(group []*request) {
	defer func() {
		for _, r := range group {
			if r.dupOf != nil {
				if r.dupOf.err != nil {
					r.err = r.dupOf.err
				} else {
					r.res = r.dupOf.res
					r.res.Duplicate = true
				}
			}
			close(r.done)
		}
	}()
	if errp := s.failed.Load(); errp != nil {
		for _, r := range group {
			r.err = *errp
		}
		return
	}
	// A nearly full disk refuses the group (503) rather than let pebble's
	// log write fail, which would end the process.
	if err := pebblelog.CheckSpace("eventstore/pebblestore", "append", s.dir); err != nil {
		for _, r := range group {
			r.err = err
		}
		return
	}
	if len(s.heads) > s.cfg.maxHeads {
		clear(s.heads)
	}
	clear(s.seq.idem)
	b := s.db.NewBatch()
	pos := s.seq.next
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if r.key != "" {
			if first, ok := s.seq.idem[r.key]; ok {
				r.dupOf = first
				continue
			}
			res, found, err := s.lookupIdem(r.key)
			if err != nil {
				r.err = err
				continue
			}
			if found {
				r.res = res
				continue
			}
		}
		cur, err := s.streamHead(r.stream)
		if err != nil {
			r.err = err
			continue
		}
		if cur != r.expected {
			r.err = &eventstore.ConflictError{StreamID: r.stream, Expected: r.expected, Actual: cur}
			continue
		}
		v := cur
		start := 0
		for _, end := range r.ends {
			v++
			rec := r.buf[start:end]
			start = end
			setRecordPosition(rec, pos, v)
			s.seq.key = streamKey(s.seq.key[:0], r.stream, uint64(v))
			s.set(b, s.seq.key, rec)
			s.seq.key = feedKey(s.seq.key[:0], pos)
			s.set(b, s.seq.key, rec)
			pos++
		}
		if r.key != "" {
			s.set(b, idemKey(r.key), encodeIdem(r.stream, v))
			s.seq.idem[r.key] = r
		}
		s.heads[r.stream] = v
		r.res = eventstore.Result{StreamID: r.stream, Version: v}
	}
	if pos > s.seq.next {
		// A failed WAL write or sync does not return: pebble calls Fatalf,
		// which ends the process (internal/pebblelog).
		if err := b.Commit(pebble.Sync); err != nil {
			// An error pebble survived (say, the database being closed
			// under us): refuse every later append until the store is
			// reopened, and fail every append of this group that was about
			// to succeed.
			err = storageErr("append: commit", err)
			s.failed.Store(&err)
			clear(s.heads)
			for _, r := range group {
				if r.err == nil && !r.res.Duplicate {
					r.err, r.res = err, eventstore.Result{}
				}
			}
			return
		}
		s.seq.next = pos
		s.head.Store(pos - 1)
		ch := make(chan struct{})
		close(*s.notify.Swap(&ch))
	}
	_ = b.Close()
}

// set adds key -> value to b without an intermediate copy.
func (s *Store) set(b *pebble.Batch, key, value []byte) {
	op := b.SetDeferred(len(key), len(value))
	copy(op.Key, key)
	copy(op.Value, value)
	_ = op.Finish() // Finish fails only for batches with an index; ours has none
}

// lookupIdem returns the stored result of an idempotency key.
func (s *Store) lookupIdem(key string) (eventstore.Result, bool, error) {
	v, closer, err := s.db.Get(idemKey(key))
	if err == pebble.ErrNotFound {
		return eventstore.Result{}, false, nil
	}
	if err != nil {
		return eventstore.Result{}, false, storageErr("append: read idempotency key", err)
	}
	defer closer.Close()
	stream, version, err := decodeIdem(v)
	if err != nil {
		return eventstore.Result{}, false, corruptErr("append: idempotency key", idemKey(key))
	}
	return eventstore.Result{StreamID: stream, Version: version, Duplicate: true}, true, nil
}

// streamHead returns the current version of stream, reading it from disk on
// a miss of the in-memory map.
func (s *Store) streamHead(stream string) (int64, error) {
	if v, ok := s.heads[stream]; ok {
		return v, nil
	}
	lo := streamKey(nil, stream, 0)
	hi := streamKey(nil, stream, math.MaxUint64)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, storageErr("append: read stream head", err)
	}
	var v int64
	if it.Last() {
		k := it.Key()
		v = int64(binary.BigEndian.Uint64(k[len(k)-8:]))
	}
	err = it.Error()
	_ = it.Close()
	if err != nil {
		return 0, storageErr("append: read stream head", err)
	}
	s.heads[stream] = v
	return v, nil
}
