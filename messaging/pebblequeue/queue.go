package pebblequeue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/internal/pebblelog"
	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/messaging"
)

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
	// scans counts the receives that scanned the index (tests count them).
	// Guarded by b.mu.
	scans int
}

var _ messaging.Queue = (*Queue)(nil)

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
		return storageErr("queue "+q.name+": release in-flight", err)
	}
	var ids []string
	for ok := it.First(); ok; ok = it.Next() {
		ids = append(ids, string(it.Key()[len(prefix)+8:]))
	}
	if err := it.Close(); err != nil {
		return storageErr("queue "+q.name+": release in-flight", err)
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
	if err := b.space.Check("queue " + q.name + ": release in-flight"); err != nil {
		return err
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return storageErr("queue "+q.name+": release in-flight", err)
	}
	return nil
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

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
	attrs = tracing.WithMessageAttr(ctx, attrs, messaging.AttrTraceParent)
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
		if q.scanFrom > nowNS {
			// No live key is due: every one is at or after scanFrom. This
			// is the common case of the receivers a send wakes after the
			// first has taken the message; they need not scan.
			if q.scanFrom != math.MaxInt64 {
				next = time.Duration(q.scanFrom - nowNS)
			}
			notify = q.notify
			return false, nil
		}
		prefix := visPrefix(q.name)
		q.scans++
		it, err := b.db.NewIter(nil)
		if err != nil {
			return false, storageErr("scan", err)
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
			return false, storageErr("scan", err)
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
		return nil, storageErr(q.name+": get "+id, err)
	}
	defer closer.Close()
	rec, err := decodeRecord(val)
	if err != nil {
		return nil, fmt.Errorf("messaging/pebblequeue: %s: decode %s: %w", q.name, id, err)
	}
	return rec, nil
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
