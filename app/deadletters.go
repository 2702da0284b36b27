package app

import (
	"context"

	"github.com/orderledger/orderledger/orders"
)

// DeadLetters returns the broker's dead-letter queue as the port of the
// dead-letter use cases (orders.Service.DeadLetters and
// RedriveDeadLetters). A redrive moves a message back to the processing
// queue atomically, visible at once with a fresh receive count.
//
// Caveat: the embedded queue has no hold on a message it lists (one
// process owns the broker, and nothing consumes the dead-letter queue), so
// Release does nothing. The broker keeps no processing error: LastError is
// empty, and DeadAt is when the message was first sent.
func (b *Broker) DeadLetters() orders.DeadLetterQueue { return brokerDLQ{b} }

type brokerDLQ struct{ b *Broker }

func (q brokerDLQ) Hold(ctx context.Context, limit int) ([]orders.DeadLetter, error) {
	msgs, err := q.b.DLQ.Peek(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]orders.DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, orders.DeadLetter{ID: m.ID, Body: m.Body, Attributes: m.Attributes,
			Attempts: m.DeadReceiveCount, DeadAt: m.SentAt, Handle: m.ID})
	}
	return out, nil
}

func (q brokerDLQ) Redrive(ctx context.Context, d orders.DeadLetter) error {
	_, err := q.b.DLQ.MoveTo(ctx, d.Handle, q.b.Processing)
	return err
}

func (q brokerDLQ) Delete(ctx context.Context, d orders.DeadLetter) error {
	return q.b.DLQ.Remove(ctx, d.Handle)
}

func (brokerDLQ) Release(context.Context, []orders.DeadLetter) error { return nil }
