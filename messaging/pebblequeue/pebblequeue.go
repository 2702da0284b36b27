// Package pebblequeue is the messaging adapter of the embedded runtime: durable
// queues and topics in one pebble database (DIR/queue).
//
// A Broker owns the database. Queues are declared with Broker.Queue (a
// visibility timeout and optionally a dead-letter queue reached after
// MaxReceiveCount receives); topics with Broker.Topic, and Topic.Subscribe
// fans every published message out to queues, with an optional attribute
// filter. Every state change (send, publish to all matching subscriptions,
// receive, delete, visibility change, dead-lettering) is one atomic pebble
// batch, durable before the call returns, so nothing acknowledged is lost on
// kill -9; messages in flight when the process died become visible again as
// soon as the queue is declared after the next Open (see releaseInFlight).
//
// Concurrency: pebble has no read-check-write transactions, so one mutex
// serialises the broker's read-modify-writes. A batch is applied under the
// mutex in WAL order, and the operation then waits for a synced WAL write
// after releasing it (see Broker.do): concurrent operations share fsyncs
// instead of taking turns for one each, yet none returns before its own write
// and every earlier one are on disk.
//
// Keys: "m\x00<queue>\x00<id>" holds a message record; "v\x00<queue>\x00
// <visible-at, 8 bytes big-endian unix ns><id>" indexes it by the time it
// becomes visible, so a receive is a short range scan. Every message received
// or deleted leaves a deletion tombstone in that index until pebble compacts
// it away, so a receive does not scan from the start of the index: each queue
// keeps scanFrom, a lower bound of its live index keys, and a range known to
// hold none (see Queue.scanFrom and Queue.gapStart), and seeks past both.
package pebblequeue

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/pebblelog"
	"github.com/orderledger/orderledger/messaging"
)

// DefaultVisibilityTimeout is used when QueueConfig.VisibilityTimeout is 0.
const DefaultVisibilityTimeout = 30 * time.Second

// Options tune a Broker.
type Options struct {
	// Clock is the time source (nil: domain.SystemClock).
	Clock domain.Clock
	// Logger receives pebble's log lines (nil: pebblelog: errors to the standard logger, fatal errors panic).
	Logger pebble.Logger
}

// Broker holds the queues and topics of one database.
type Broker struct {
	db     *pebble.DB
	clock  domain.Clock
	ids    domain.IDSource
	mu     sync.Mutex   // serialises every read-modify-write
	life   sync.RWMutex // held shared by every operation, exclusively by Close
	queues map[string]*Queue
	topics map[string]*Topic
	closed bool
}

// Open opens (creating if needed) the broker database in dir.
func Open(dir string, opts Options) (*Broker, error) {
	logger := opts.Logger
	if logger == nil {
		logger = pebblelog.Logger{Prefix: "messaging/pebblequeue"}
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("messaging/pebblequeue: open %s: %w", dir, err)
	}
	clock := opts.Clock
	if clock == nil {
		clock = domain.SystemClock
	}
	return &Broker{db: db, clock: clock, ids: domain.NewULIDSource(nil),
		queues: map[string]*Queue{}, topics: map[string]*Topic{}}, nil
}

// Close closes the database; later calls return messaging.ErrClosed.
func (b *Broker) Close() error {
	b.life.Lock()
	defer b.life.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	for _, q := range b.queues {
		q.signal()
	}
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("messaging/pebblequeue: close: %w", err)
	}
	return nil
}

// do runs f with b.mu held. f stages its changes with b.commit, which
// applies them in WAL order without waiting for the disk; do then releases
// the lock and waits until the WAL is synced up to and including them. An
// operation therefore returns only once its own write and every write before
// it are durable (no acknowledgement ever precedes its fsync), while
// concurrent operations on any queue share fsyncs instead of queueing for
// one each behind the lock.
func (b *Broker) do(f func() (wrote bool, err error)) error {
	b.life.RLock()
	defer b.life.RUnlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return messaging.ErrClosed
	}
	wrote, err := f()
	b.mu.Unlock()
	if err != nil || !wrote {
		return err
	}
	// A log-only record with Sync: the WAL is sequential, so syncing it
	// syncs every batch committed before it.
	if err := b.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("messaging/pebblequeue: sync: %w", err)
	}
	return nil
}

// commit applies batch to the WAL and memtable; call inside do, which makes
// it durable before the operation returns.
func (b *Broker) commit(batch *pebble.Batch) error {
	return batch.Commit(pebble.NoSync)
}

// QueueConfig declares a queue.
type QueueConfig struct {
	// VisibilityTimeout hides a received message from other receivers
	// (0: DefaultVisibilityTimeout).
	VisibilityTimeout time.Duration
	// DeadLetter is the queue a message moves to on the receive after it
	// reached MaxReceiveCount receives; nil keeps messages forever.
	DeadLetter *Queue
	// MaxReceiveCount is the redrive policy's count (0:
	// messaging.MaxReceiveCount). Used only with DeadLetter.
	MaxReceiveCount int
}

// Queue is a durable queue. It implements messaging.Queue.
type Queue struct {
	b      *Broker
	name   string
	cfg    QueueConfig
	notify chan struct{} // closed and replaced on every send; guarded by b.mu
	// scanFrom is a lower bound of the visible-at times in the queue's
	// visibility index: no live key of the index is below it. Guarded by b.mu.
	// put lowers it before every write of an index key (every path that
	// writes one goes through put), and a receive raises it after a
	// committed scan to the first key it left in place, so a receive seeks
	// past the tombstones of the messages handled so far instead of stepping
	// over each of them (they stay until pebble compacts them away).
	scanFrom int64
	// [gapStart, gapEnd) is a range of visible-at times known to hold no
	// live index key (empty when gapStart >= gapEnd). Guarded by b.mu. It is
	// what a send leaves behind when it lowers scanFrom: the index between
	// the new message and the old bound is empty but for tombstones, mostly
	// those of in-flight messages deleted since they were received (their
	// keys sit a visibility timeout ahead). A receive skips the gap with one
	// seek, so when nothing else is due it does not walk those tombstones
	// again after every send.
	gapStart, gapEnd int64
}

var _ messaging.Queue = (*Queue)(nil)

func validName(name string) error {
	if name == "" || len(name) > 80 {
		return fmt.Errorf("messaging/pebblequeue: invalid name %q: 1..80 characters", name)
	}
	for _, r := range name {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("messaging/pebblequeue: invalid name %q: letters, digits, '-', '_' and '.' only", name)
		}
	}
	return nil
}

// Queue declares the queue name (or returns it if declared before with the
// same settings). Messages already stored under name are kept.
func (b *Broker) Queue(name string, cfg QueueConfig) (*Queue, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if cfg.VisibilityTimeout < 0 || cfg.MaxReceiveCount < 0 {
		return nil, fmt.Errorf("messaging/pebblequeue: queue %s: negative settings", name)
	}
	if cfg.VisibilityTimeout == 0 {
		cfg.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if cfg.MaxReceiveCount == 0 {
		cfg.MaxReceiveCount = messaging.MaxReceiveCount
	}
	if cfg.DeadLetter != nil && (cfg.DeadLetter.b != b || cfg.DeadLetter.name == name) {
		return nil, fmt.Errorf("messaging/pebblequeue: queue %s: dead-letter queue must be another queue of the same broker", name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if q, ok := b.queues[name]; ok {
		if q.cfg != cfg {
			return nil, fmt.Errorf("messaging/pebblequeue: queue %s already declared with other settings", name)
		}
		return q, nil
	}
	q := &Queue{b: b, name: name, cfg: cfg, notify: make(chan struct{})}
	if err := q.releaseInFlight(); err != nil {
		return nil, err
	}
	b.queues[name] = q
	return q, nil
}

// releaseInFlight makes every message that is invisible now visible at once.
// It runs when a queue is first declared after Open: pebble's directory lock
// means no other process holds the database, so such messages were in the
// hands of a process that died (or waiting out a retry delay, which a restart
// may shorten), and the wait for the visibility timeout after a crash goes
// away.
//
// A receive cut off by the crash was no attempt, so it is uncounted: else a
// crash during an order's last attempt would dead-letter the message before
// its handler ever ran again, leaving the order unfinished. It is uncounted
// once per message only, so a message that itself crashes the process still
// reaches the dead-letter queue, one receive later. Messages handed back with
// ChangeVisibility (Returned: a real, failed attempt) keep their count.
// Call with b.mu held.
func (q *Queue) releaseInFlight() error {
	b := q.b
	now := b.clock().UnixNano()
	prefix := visPrefix(q.name)
	it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: visKey(q.name, now+1, ""), UpperBound: pebblelog.PrefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("messaging/pebblequeue: queue %s: release in-flight: %w", q.name, err)
	}
	var ids []string
	for ok := it.First(); ok; ok = it.Next() {
		ids = append(ids, string(it.Key()[len(prefix)+8:]))
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("messaging/pebblequeue: queue %s: release in-flight: %w", q.name, err)
	}
	if len(ids) == 0 {
		return nil
	}
	batch := b.db.NewBatch()
	defer batch.Close()
	for _, id := range ids {
		rec, err := q.get(id)
		if err != nil {
			return err
		}
		if rec == nil {
			continue
		}
		if err := batch.Delete(visKey(q.name, rec.VisibleAt, rec.ID), nil); err != nil {
			return err
		}
		rec.VisibleAt = now
		if rec.ReceiveCount > 0 && !rec.Returned && !rec.Forgiven {
			rec.ReceiveCount--
			rec.Forgiven = true
		}
		if err := q.put(batch, rec); err != nil {
			return err
		}
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("messaging/pebblequeue: queue %s: release in-flight: %w", q.name, err)
	}
	return nil
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// record is a stored message.
type record struct {
	ID           string            `json:"id"`
	Body         []byte            `json:"body"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	ReceiveCount int               `json:"receive_count"`
	VisibleAt    int64             `json:"visible_at"` // unix ns
	SentAt       int64             `json:"sent_at"`    // unix ns
	// DeadLetteredFrom is the queue the message was dead-lettered from.
	DeadLetteredFrom string `json:"dead_lettered_from,omitempty"`
	// DeadReceiveCount is the receive count it had there.
	DeadReceiveCount int `json:"dead_receive_count,omitempty"`
	// Returned is set when the receiver handed the message back with
	// ChangeVisibility (a finished, failed attempt) and cleared on receive.
	Returned bool `json:"returned,omitempty"`
	// Forgiven is set once a receive cut off by a crash has been uncounted
	// (see releaseInFlight); it is forgiven only once per message.
	Forgiven bool `json:"forgiven,omitempty"`
}

func msgKey(queue, id string) []byte { return []byte("m\x00" + queue + "\x00" + id) }

func msgPrefix(queue string) []byte { return []byte("m\x00" + queue + "\x00") }

func visPrefix(queue string) []byte { return []byte("v\x00" + queue + "\x00") }

func visKey(queue string, at int64, id string) []byte {
	k := visPrefix(queue)
	k = binary.BigEndian.AppendUint64(k, uint64(max(at, 0)))
	return append(k, id...)
}

// put writes rec into queue q in batch and lowers q.scanFrom to cover its
// index key (even if the batch is then not committed: a lower bound that is
// too low only costs a longer scan). Call with b.mu held.
func (q *Queue) put(batch *pebble.Batch, rec *record) error {
	q.lower(max(rec.VisibleAt, 0))
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := batch.Set(msgKey(q.name, rec.ID), data, nil); err != nil {
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

// signal wakes receivers; call with b.mu held.
func (q *Queue) signal() {
	close(q.notify)
	q.notify = make(chan struct{})
}

// Send implements messaging.Queue.
func (q *Queue) Send(ctx context.Context, body []byte, attrs map[string]string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	b := q.b
	var id string
	err := b.do(func() (bool, error) {
		now := b.clock()
		rec := &record{ID: b.ids(now), Body: body, Attributes: copyAttrs(attrs), VisibleAt: now.UnixNano(), SentAt: now.UnixNano()}
		batch := b.db.NewBatch()
		defer batch.Close()
		if err := q.put(batch, rec); err != nil {
			return false, err
		}
		if err := b.commit(batch); err != nil {
			return false, err
		}
		q.signal()
		id = rec.ID
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("messaging/pebblequeue: send to %s: %w", q.name, err)
	}
	return id, nil
}

func copyAttrs(a map[string]string) map[string]string {
	if len(a) == 0 {
		return nil
	}
	c := make(map[string]string, len(a))
	for k, v := range a {
		c[k] = v
	}
	return c
}

// Receive implements messaging.Queue.
func (q *Queue) Receive(ctx context.Context, max int, wait time.Duration) ([]messaging.Message, error) {
	if max < 1 || max > 100 {
		return nil, fmt.Errorf("messaging/pebblequeue: receive from %s: max %d is not in 1..100", q.name, max)
	}
	deadline := time.Now().Add(wait)
	for {
		msgs, next, notify, err := q.receiveOnce(max)
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return []messaging.Message{}, nil
		}
		if next > 0 && next < left {
			left = next
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-notify:
		case <-t.C:
		}
		t.Stop()
	}
}

// receiveOnce receives what is visible now. When nothing is, it returns how
// long until the earliest invisible message becomes visible (0: none) and
// the channel that a send closes.
func (q *Queue) receiveOnce(max int) ([]messaging.Message, time.Duration, <-chan struct{}, error) {
	var (
		out    []messaging.Message
		next   time.Duration
		notify <-chan struct{}
	)
	b := q.b
	err := b.do(func() (bool, error) {
		now := b.clock()
		nowNS := now.UnixNano()
		prefix := visPrefix(q.name)
		it, err := b.db.NewIter(nil)
		if err != nil {
			return false, err
		}
		type due struct {
			key []byte
			id  string
		}
		var dues []due
		// left is the visible-at time of the first key this scan leaves in
		// place: every live key is at or after it once the batch below is
		// committed, except those the batch itself writes (through put).
		// When the scan stops at max it stops on the last key it takes, not
		// on the next one: stepping to the next would walk the tombstones of
		// deleted in-flight messages whenever no other message is due.
		left := int64(math.MaxInt64)
	scan:
		for _, r := range q.scanRanges() {
			upper := pebblelog.PrefixEnd(prefix)
			if r[1] != math.MaxInt64 {
				upper = visKey(q.name, r[1], "")
			}
			it.SetBounds(visKey(q.name, r[0], ""), upper)
			for ok := it.First(); ok; ok = it.Next() {
				k := it.Key()
				at := int64(binary.BigEndian.Uint64(k[len(prefix) : len(prefix)+8]))
				if at > nowNS {
					next = time.Duration(at - nowNS)
					left = at
					break scan
				}
				dues = append(dues, due{key: append([]byte(nil), k...), id: string(k[len(prefix)+8:])})
				if len(dues) == max {
					left = at
					break scan
				}
			}
		}
		if err := it.Close(); err != nil {
			return false, err
		}
		if len(dues) == 0 {
			q.scanFrom = left
			notify = q.notify
			return false, nil
		}
		batch := b.db.NewBatch()
		defer batch.Close()
		moved := false
		for _, d := range dues {
			rec, err := q.get(d.id)
			if err != nil {
				return false, err
			}
			if err := batch.Delete(d.key, nil); err != nil {
				return false, err
			}
			if rec == nil { // index entry without a message: clean it up
				continue
			}
			if dlq := q.cfg.DeadLetter; dlq != nil && rec.ReceiveCount >= q.cfg.MaxReceiveCount {
				if err := batch.Delete(msgKey(q.name, rec.ID), nil); err != nil {
					return false, err
				}
				rec.DeadLetteredFrom, rec.DeadReceiveCount = q.name, rec.ReceiveCount
				rec.ReceiveCount, rec.VisibleAt = 0, nowNS
				if err := dlq.put(batch, rec); err != nil {
					return false, err
				}
				moved = true
				continue
			}
			rec.ReceiveCount++
			rec.Returned = false
			rec.VisibleAt = now.Add(q.cfg.VisibilityTimeout).UnixNano()
			if err := q.put(batch, rec); err != nil {
				return false, err
			}
			out = append(out, messaging.Message{
				ID: rec.ID, Body: rec.Body, Attributes: copyAttrs(rec.Attributes), ReceiveCount: rec.ReceiveCount,
				ReceiptHandle: receipt(rec.ID, rec.ReceiveCount), SentAt: time.Unix(0, rec.SentAt).UTC(),
			})
		}
		if err := b.commit(batch); err != nil {
			return false, err
		}
		// The batch removed every key before left and put the received
		// messages back at now+VisibilityTimeout.
		q.scanFrom = min(left, now.Add(q.cfg.VisibilityTimeout).UnixNano())
		if moved {
			q.cfg.DeadLetter.signal()
		}
		if len(out) == 0 {
			// Everything due was dead-lettered; look again at once.
			closed := make(chan struct{})
			close(closed)
			notify = closed
		}
		return true, nil
	})
	if err != nil {
		return nil, 0, nil, fmt.Errorf("messaging/pebblequeue: receive from %s: %w", q.name, err)
	}
	return out, next, notify, nil
}

// get loads a record; nil when absent. Call with b.mu held.
func (q *Queue) get(id string) (*record, error) {
	val, closer, err := q.b.db.Get(msgKey(q.name, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("messaging/pebblequeue: %s: get %s: %w", q.name, id, err)
	}
	defer closer.Close()
	var rec record
	if err := json.Unmarshal(val, &rec); err != nil {
		return nil, fmt.Errorf("messaging/pebblequeue: %s: decode %s: %w", q.name, id, err)
	}
	return &rec, nil
}

func receipt(id string, count int) string { return id + "." + strconv.Itoa(count) }

func parseReceipt(h string) (id string, count int, ok bool) {
	i := strings.LastIndexByte(h, '.')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(h[i+1:])
	if err != nil || n < 1 {
		return "", 0, false
	}
	return h[:i], n, true
}

// inFlight returns the record that receipt h names if it is the current
// receipt. Call with b.mu held.
func (q *Queue) inFlight(h string) (*record, error) {
	id, count, ok := parseReceipt(h)
	if !ok {
		return nil, messaging.ErrInvalidReceipt
	}
	rec, err := q.get(id)
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.ReceiveCount != count {
		return nil, nil
	}
	return rec, nil
}

// Delete implements messaging.Queue. A stale receipt (the message was
// received again since) deletes nothing, as in SQS.
func (q *Queue) Delete(ctx context.Context, receiptHandle string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return q.b.do(func() (bool, error) {
		rec, err := q.inFlight(receiptHandle)
		if err != nil || rec == nil {
			return false, err
		}
		return true, q.remove(rec)
	})
}

// remove deletes rec; call with b.mu held.
func (q *Queue) remove(rec *record) error {
	batch := q.b.db.NewBatch()
	defer batch.Close()
	if err := batch.Delete(msgKey(q.name, rec.ID), nil); err != nil {
		return err
	}
	if err := batch.Delete(visKey(q.name, rec.VisibleAt, rec.ID), nil); err != nil {
		return err
	}
	if err := q.b.commit(batch); err != nil {
		return fmt.Errorf("messaging/pebblequeue: delete from %s: %w", q.name, err)
	}
	return nil
}

// ChangeVisibility implements messaging.Queue.
func (q *Queue) ChangeVisibility(ctx context.Context, receiptHandle string, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d < 0 || d > 12*time.Hour {
		return fmt.Errorf("messaging/pebblequeue: change visibility in %s: %v is not in 0..12h", q.name, d)
	}
	b := q.b
	return b.do(func() (bool, error) {
		rec, err := q.inFlight(receiptHandle)
		if err != nil {
			return false, err
		}
		if rec == nil {
			return false, messaging.ErrInvalidReceipt
		}
		batch := b.db.NewBatch()
		defer batch.Close()
		if err := batch.Delete(visKey(q.name, rec.VisibleAt, rec.ID), nil); err != nil {
			return false, err
		}
		rec.VisibleAt = b.clock().Add(d).UnixNano()
		rec.Returned = true
		if err := q.put(batch, rec); err != nil {
			return false, err
		}
		if err := b.commit(batch); err != nil {
			return false, fmt.Errorf("messaging/pebblequeue: change visibility in %s: %w", q.name, err)
		}
		q.signal()
		return true, nil
	})
}

// Stored is a message as stored, for operator tools.
type Stored struct {
	messaging.Message
	// Visible reports whether the message can be received now.
	Visible bool
	// VisibleAt is when it becomes (or became) visible.
	VisibleAt time.Time
	// DeadLetteredFrom and DeadReceiveCount say where a dead-lettered
	// message came from and how often it had been received there.
	DeadLetteredFrom string
	DeadReceiveCount int
}

// Peek returns up to limit stored messages (0: all) in ID order without
// receiving them.
func (q *Queue) Peek(ctx context.Context, limit int) ([]Stored, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := q.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, messaging.ErrClosed
	}
	now := b.clock().UnixNano()
	prefix := msgPrefix(q.name)
	it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: pebblelog.PrefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("messaging/pebblequeue: peek %s: %w", q.name, err)
	}
	var out []Stored
	for ok := it.First(); ok && (limit <= 0 || len(out) < limit); ok = it.Next() {
		var rec record
		if err := json.Unmarshal(it.Value(), &rec); err != nil {
			it.Close()
			return nil, fmt.Errorf("messaging/pebblequeue: peek %s: %w", q.name, err)
		}
		out = append(out, Stored{
			Message: messaging.Message{ID: rec.ID, Body: rec.Body, Attributes: rec.Attributes,
				ReceiveCount: rec.ReceiveCount, SentAt: time.Unix(0, rec.SentAt).UTC()},
			Visible: rec.VisibleAt <= now, VisibleAt: time.Unix(0, rec.VisibleAt).UTC(),
			DeadLetteredFrom: rec.DeadLetteredFrom, DeadReceiveCount: rec.DeadReceiveCount,
		})
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("messaging/pebblequeue: peek %s: %w", q.name, err)
	}
	return out, nil
}

// Stats counts a queue's messages.
type Stats struct {
	Visible  int // receivable now
	InFlight int // received and not yet deleted, or delayed
}

// Stats counts the queue's messages.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	msgs, err := q.Peek(ctx, 0)
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	for _, m := range msgs {
		if m.Visible {
			s.Visible++
		} else {
			s.InFlight++
		}
	}
	return s, nil
}

// Remove deletes the message with the given ID whatever its state (an
// operator dropping a dead letter). Removing an absent message is not an error.
func (q *Queue) Remove(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return q.b.do(func() (bool, error) {
		rec, err := q.get(id)
		if err != nil || rec == nil {
			return false, err
		}
		return true, q.remove(rec)
	})
}

// MoveTo moves the message with the given ID to dst atomically, visible at
// once with a fresh receive count (a redrive). It reports whether the
// message was there.
func (q *Queue) MoveTo(ctx context.Context, id string, dst *Queue) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if dst == nil || dst.b != q.b || dst == q {
		return false, fmt.Errorf("messaging/pebblequeue: move from %s: invalid destination", q.name)
	}
	b := q.b
	found := false
	err := b.do(func() (bool, error) {
		rec, err := q.get(id)
		if err != nil || rec == nil {
			return false, err
		}
		batch := b.db.NewBatch()
		defer batch.Close()
		if err := batch.Delete(msgKey(q.name, rec.ID), nil); err != nil {
			return false, err
		}
		if err := batch.Delete(visKey(q.name, rec.VisibleAt, rec.ID), nil); err != nil {
			return false, err
		}
		rec.ReceiveCount, rec.VisibleAt = 0, b.clock().UnixNano()
		rec.DeadLetteredFrom, rec.DeadReceiveCount = "", 0
		if err := dst.put(batch, rec); err != nil {
			return false, err
		}
		if err := b.commit(batch); err != nil {
			return false, err
		}
		dst.signal()
		found = true
		return true, nil
	})
	if err != nil {
		return false, fmt.Errorf("messaging/pebblequeue: move from %s to %s: %w", q.name, dst.name, err)
	}
	return found, nil
}

// Topic fans published messages out to subscribed queues. It implements
// messaging.Topic.
type Topic struct {
	b    *Broker
	name string
	subs []subscription // guarded by b.mu
}

type subscription struct {
	q      *Queue
	filter messaging.Filter
}

var _ messaging.Topic = (*Topic)(nil)

// Topic declares the topic name (or returns it).
func (b *Broker) Topic(name string) (*Topic, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.topics[name]; ok {
		return t, nil
	}
	t := &Topic{b: b, name: name}
	b.topics[name] = t
	return t, nil
}

// Subscribe delivers every later message whose attributes pass filter to q.
// Subscriptions are configuration, declared at startup like infrastructure;
// subscribing q again replaces its filter.
func (t *Topic) Subscribe(q *Queue, filter messaging.Filter) error {
	if q == nil || q.b != t.b {
		return fmt.Errorf("messaging/pebblequeue: subscribe to %s: queue of another broker", t.name)
	}
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	for i := range t.subs {
		if t.subs[i].q == q {
			t.subs[i].filter = filter
			return nil
		}
	}
	t.subs = append(t.subs, subscription{q: q, filter: filter})
	return nil
}

// Publish implements messaging.Topic: one atomic batch puts a copy into every
// matching subscribed queue. With no matching subscription the message is
// accepted and goes nowhere, as with SNS.
func (t *Topic) Publish(ctx context.Context, body []byte, attrs map[string]string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	b := t.b
	var id string
	err := b.do(func() (bool, error) {
		now := b.clock()
		id = b.ids(now)
		batch := b.db.NewBatch()
		defer batch.Close()
		var hit []*Queue
		for _, s := range t.subs {
			if !s.filter.Match(attrs) {
				continue
			}
			rec := &record{ID: b.ids(now), Body: body, Attributes: copyAttrs(attrs), VisibleAt: now.UnixNano(), SentAt: now.UnixNano()}
			if err := s.q.put(batch, rec); err != nil {
				return false, err
			}
			hit = append(hit, s.q)
		}
		if len(hit) == 0 {
			return false, nil
		}
		if err := b.commit(batch); err != nil {
			return false, err
		}
		for _, q := range hit {
			q.signal()
		}
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("messaging/pebblequeue: publish to %s: %w", t.name, err)
	}
	return id, nil
}
