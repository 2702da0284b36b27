package awsmsg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/orders"
)

// HoldTimeout is how long DeadLetters hides the messages it holds from
// other readers of the dead-letter queue (released sooner by Release).
const HoldTimeout = 60 * time.Second

// DeadLetters is an SQS dead-letter queue as the port of the dead-letter
// use cases (orders.Service.DeadLetters and RedriveDeadLetters), with the
// queue its messages were dead-lettered from.
//
// SQS has no peek: Hold receives the messages with a visibility timeout of
// HoldTimeout, and Release makes them visible again at once. A redrive
// sends the message (body and attributes) to the source queue and then
// deletes it from the dead-letter queue: a crash between the two leaves it
// in both, which the processors tolerate (they are idempotent per order).
// SQS keeps no processing error and no dead-lettering time: LastError is
// empty, DeadAt is when the message was first sent, and Attempts is the
// redrive policy's maximum receive count (messaging.MaxReceiveCount), the
// number of deliveries a message has had when SQS dead-letters it.
type DeadLetters struct {
	DLQ, Source *Queue
}

var _ orders.DeadLetterQueue = DeadLetters{}

// errUnavailable marks a failed call to the queue as domain.Unavailable
// (the API answers 503).
var errUnavailable = domain.Errorf(domain.Unavailable, "the dead-letter queue is unavailable")

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", errUnavailable, err)
}

// Hold implements orders.DeadLetterQueue: it receives until limit messages
// (0: all) are held or a receive returns none.
func (q DeadLetters) Hold(ctx context.Context, limit int) ([]orders.DeadLetter, error) {
	if q.DLQ == nil || q.Source == nil {
		return nil, errors.New("messaging/awsmsg: dead letters: the dead-letter and source queues are required")
	}
	var out []orders.DeadLetter
	seen := map[string]bool{}
	for limit <= 0 || len(out) < limit {
		n := 10
		if limit > 0 {
			n = min(n, limit-len(out))
		}
		msgs, err := q.DLQ.receive(ctx, n, HoldTimeout)
		if err != nil {
			return nil, unavailable(errors.Join(err, q.Release(context.WithoutCancel(ctx), out)))
		}
		fresh := 0
		for _, m := range msgs {
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			fresh++
			out = append(out, orders.DeadLetter{ID: m.ID, Body: m.Body, Attributes: m.Attributes,
				Attempts: messaging.MaxReceiveCount, DeadAt: m.SentAt, Handle: m.ReceiptHandle})
		}
		if fresh == 0 {
			break
		}
	}
	return out, nil
}

// Redrive implements orders.DeadLetterQueue.
func (q DeadLetters) Redrive(ctx context.Context, d orders.DeadLetter) error {
	if _, err := q.Source.Send(ctx, d.Body, d.Attributes); err != nil {
		return unavailable(fmt.Errorf("messaging/awsmsg: redrive %s: %w", d.ID, err))
	}
	return unavailable(q.DLQ.Delete(ctx, d.Handle))
}

// Delete implements orders.DeadLetterQueue.
func (q DeadLetters) Delete(ctx context.Context, d orders.DeadLetter) error {
	return unavailable(q.DLQ.Delete(ctx, d.Handle))
}

// Release implements orders.DeadLetterQueue.
func (q DeadLetters) Release(ctx context.Context, ds []orders.DeadLetter) error {
	var errs []error
	for _, d := range ds {
		if err := q.DLQ.ChangeVisibility(ctx, d.Handle, 0); err != nil && !errors.Is(err, messaging.ErrInvalidReceipt) {
			errs = append(errs, err)
		}
	}
	return unavailable(errors.Join(errs...))
}
