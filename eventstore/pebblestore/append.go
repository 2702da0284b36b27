package pebblestore

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"fmt"
	"hash"
	"math"
	"runtime"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// Group limits: the sequencer stops draining waiting appends into one batch
// beyond these, so that one huge group does not delay everyone behind it.
const (
	maxGroupAppends = 1024
	maxGroupBytes   = 16 << 20
)

// yieldMax bounds how often the sequencer yields the processor while forming
// a group smaller than its target (the recent peak group size: the largest
// of the last groups, less one per group since, so that two cohorts of
// writers that would leapfrog each other's fsyncs merge into one, and a
// lone writer's target falls back to one). Writers answered by the previous
// commit are typically runnable but not yet running (on two cores, with the
// sequencer busy); a runtime.Gosched lets them hand in their next append, so
// that they share the next fsync instead of waiting a whole fsync for the one
// after. It is not a delay: with nothing else runnable it returns at once,
// and a lone writer (a target of one) never yields. What it gains is
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
	// states holds, per event, the SHA-256 state after its canonical
	// encoding (eventstore.AppendCanonical), marshalled: the sequencer only
	// adds the predecessor's hash, so hashing costs it one block per event.
	states []byte

	// Set by the sequencer before it closes done.
	res   eventstore.Result
	err   error
	dupOf *request // an earlier append with the same key in the same group
	done  chan struct{}
}

// sequencerState is owned by the sequencer goroutine.
type sequencerState struct {
	hash  hash.Hash           // the SHA-256 that finishes events' hashes
	next  uint64              // position of the next event
	idem  map[string]*request // idempotency keys written by the current group
	group []*request
	last  int // target size of the next group: the recent peak (see yieldMax)
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
			len(e.Metadata.CorrelationID) + len(e.Metadata.CausationID) + len(e.Metadata.RequestID) +
			len(e.Metadata.TraceParent)
	}
	r := &request{
		ctx:      ctx,
		key:      key,
		stream:   stream,
		expected: expected,
		buf:      make([]byte, 0, size),
		ends:     make([]int, len(events)),
		states:   make([]byte, 0, len(events)*hashStateSize),
		done:     make(chan struct{}),
	}
	h := hashers.Get().(*hasher)
	defer hashers.Put(h)
	for i := range events {
		r.buf = encodeRecord(r.buf, stream, &events[i])
		r.ends[i] = len(r.buf)
		// The version the event gets if the append succeeds (it fails
		// otherwise, and the state is thrown away).
		e := events[i]
		e.StreamID, e.Version = stream, expected+int64(i)+1
		h.canon = eventstore.AppendCanonical(h.canon[:0], &e)
		h.h.Reset()
		h.h.Write(h.canon)
		var err error
		if r.states, err = h.h.(encoding.BinaryAppender).AppendBinary(r.states); err != nil {
			return nil, fmt.Errorf("eventstore/pebblestore: append: hash state: %w", err)
		}
	}
	return r, nil
}

// hashStateSize is the size of a marshalled SHA-256 state.
var hashStateSize = func() int {
	b, err := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err)
	}
	return len(b)
}()

type hasher struct {
	h     hash.Hash
	canon []byte
}

var hashers = sync.Pool{New: func() any { return &hasher{h: sha256.New()} }}

// finishHash returns the hash of the event whose marshalled state is state,
// chained to prev. Only the sequencer calls it.
func (s *Store) finishHash(state []byte, prev eventstore.Hash) eventstore.Hash {
	if s.seq.hash == nil {
		s.seq.hash = sha256.New()
	}
	if err := s.seq.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		panic("eventstore/pebblestore: hash state: " + err.Error()) // states are ours, of one size
	}
	s.seq.hash.Write(prev[:])
	var out eventstore.Hash
	s.seq.hash.Sum(out[:0])
	return out
}

// sequence is the sequencer goroutine: it takes every append waiting, and
// commits them as one group, until Close.
func (s *Store) sequence() {
	defer close(s.done)
	defer close(s.apply)
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
		s.seq.last = max(len(group), s.seq.last-1)
		s.commitGroup(group)
		clear(group)
		s.seq.group = group[:0]
	}
}

// applier applies each batch the sequencer hands it to pebble, unsynced,
// while the sequencer syncs the durable log: on two cores the commit costs
// the fsync's idle time instead of time between fsyncs. It stops when the
// sequencer does.
func (s *Store) applier() {
	for b := range s.apply {
		if errp := s.refuseApply.Load(); errp != nil {
			s.applied <- *errp
			continue
		}
		s.applied <- b.Commit(pebble.NoSync)
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
	if err := s.space.Check("append"); err != nil {
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
		if cur.version != r.expected {
			r.err = &eventstore.ConflictError{StreamID: r.stream, Expected: r.expected, Actual: cur.version}
			continue
		}
		v := cur.version
		// An event is hashed only when its predecessor is (or it has
		// none): a stream stored before the chain stays unhashed until
		// ledger audit migrate hashes it, so unhashed events are always a
		// stream's tail.
		chained := v == 0 || !cur.hash.IsZero()
		prev := cur.hash
		start := 0
		for i, end := range r.ends {
			v++
			rec := r.buf[start:end]
			start = end
			setRecordPosition(rec, pos, v)
			if chained {
				h := s.finishHash(r.states[i*hashStateSize:(i+1)*hashStateSize], prev)
				setRecordHashes(rec, prev, h)
				prev = h
			}
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
		s.heads[r.stream] = streamHead{version: v, hash: prev}
		r.res = eventstore.Result{StreamID: r.stream, Version: v}
	}
	if pos > s.seq.next {
		// Durable in the store's own log (durable.go; a failed write or
		// sync does not return: the process ends, as for pebble's log,
		// internal/pebblelog). The applier applies the batch to pebble
		// while the log syncs; nothing past the published head is read,
		// so the group is visible only once both are done.
		s.log.write(b, s.seq.next, pos-1)
		s.apply <- b
		s.log.sync()
		if err := <-s.applied; err != nil {
			// An error pebble survived (say, the database being closed
			// under us): the record is taken back, every later append is
			// refused until the store is reopened, and every append of
			// this group that was about to succeed fails.
			s.log.revoke()
			err = storageErr("append: commit", err)
			s.failed.Store(&err)
			clear(s.heads)
			for _, r := range group {
				if r.err == nil && !r.res.Duplicate {
					r.err, r.res = err, eventstore.Result{}
				}
			}
			_ = b.Close()
			return
		}
		s.groups.add(pos - s.seq.next)
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

// streamHead is a stream's last version and that event's hash.
type streamHead struct {
	version int64
	hash    eventstore.Hash
}

// streamHead returns the current head of stream, reading it from disk on a
// miss of the in-memory map. An unhashed head is always read again, since
// Migrate may have hashed it meanwhile.
func (s *Store) streamHead(stream string) (streamHead, error) {
	if h, ok := s.heads[stream]; ok && (h.version == 0 || !h.hash.IsZero()) {
		return h, nil
	}
	// Most misses are new streams: one point read of version 1 (versions
	// are gap-free from 1) is cheaper than an iterator.
	s.seq.key = streamKey(s.seq.key[:0], stream, 1)
	switch _, closer, err := s.db.Get(s.seq.key); {
	case err == pebble.ErrNotFound:
		s.heads[stream] = streamHead{}
		return streamHead{}, nil
	case err != nil:
		return streamHead{}, storageErr("append: read stream head", err)
	default:
		_ = closer.Close()
	}
	lo := streamKey(nil, stream, 0)
	hi := streamKey(nil, stream, math.MaxUint64)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return streamHead{}, storageErr("append: read stream head", err)
	}
	var h streamHead
	if it.Last() {
		k := it.Key()
		h.version = int64(binary.BigEndian.Uint64(k[len(k)-8:]))
		v, verr := it.ValueAndErr()
		if verr != nil {
			_ = it.Close()
			return streamHead{}, storageErr("append: read stream head", verr)
		}
		var herr error
		if h.hash, herr = recordHash(v); herr != nil {
			_ = it.Close()
			return streamHead{}, corruptErr("append: read stream head", k)
		}
	}
	err = it.Error()
	_ = it.Close()
	if err != nil {
		return streamHead{}, storageErr("append: read stream head", err)
	}
	s.heads[stream] = h
	return h, nil
}
