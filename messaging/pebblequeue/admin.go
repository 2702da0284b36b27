package pebblequeue

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/internal/pebblelog"
	"github.com/orderledger/orderledger/messaging"
)

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
		return nil, storageErr("peek "+q.name, err)
	}
	var out []Stored
	for ok := it.First(); ok && (limit <= 0 || len(out) < limit); ok = it.Next() {
		rec, err := decodeRecord(it.Value())
		if err != nil {
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
		return nil, storageErr("peek "+q.name, err)
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
