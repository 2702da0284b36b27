package pebblequeue

import (
	"context"
	"fmt"
	"slices"

	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/messaging"
)

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

var _ messaging.BatchTopic = (*Topic)(nil)

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
	var id string
	if err := t.publish(ctx, []messaging.Outgoing{{Body: body, Attrs: attrs}}, &id); err != nil {
		return "", err
	}
	return id, nil
}

// PublishBatch implements messaging.BatchTopic: every message of msgs, each
// into its matching subscribed queues, in one atomic batch made durable by
// one sync, so it returns len(msgs) or 0 and the error.
func (t *Topic) PublishBatch(ctx context.Context, msgs []messaging.Outgoing) (int, error) {
	if err := t.publish(ctx, msgs, nil); err != nil {
		return 0, err
	}
	return len(msgs), nil
}

// publish writes msgs as one broker operation; id, when not nil, gets the
// last message's ID.
func (t *Topic) publish(ctx context.Context, msgs []messaging.Outgoing, id *string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	b := t.b
	attrs := make([]map[string]string, len(msgs))
	for i, m := range msgs {
		attrs[i] = tracing.WithMessageAttr(ctx, m.Attrs, messaging.AttrTraceParent)
	}
	err := b.do(func() (bool, error) {
		now := b.clock()
		batch := b.db.NewBatch()
		defer batch.Close()
		var hit []*Queue
		for i, m := range msgs {
			if id != nil {
				*id = b.ids(now)
			}
			for _, s := range t.subs {
				if !s.filter.Match(attrs[i]) {
					continue
				}
				rec := &record{ID: b.ids(now), Body: m.Body, Attributes: copyAttrs(attrs[i]), VisibleAt: now.UnixNano(), SentAt: now.UnixNano()}
				if err := s.q.put(batch, rec); err != nil {
					return false, err
				}
				if !slices.Contains(hit, s.q) {
					hit = append(hit, s.q)
				}
			}
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
		return fmt.Errorf("messaging/pebblequeue: publish to %s: %w", t.name, err)
	}
	return nil
}
