// Package processing is the order saga: for a placed order it charges
// payment, then reserves inventory, recording each outcome in the order's
// stream, and completes or fails the order; when inventory fails after a
// successful charge it refunds first (compensation), then fails. A charge
// that lands after the order was cancelled (the customer cancelled while
// the payment service was charging) is recorded on the cancelled order and
// refunded the same way, so every cent that moves is in the history.
//
// The saga is a function of one queue message: (*Processor).Handle takes a
// messaging.Message whose body is the OrderPlaced envelope (eventstore.Event
// as JSON) and returns nil when the message is done (delete it) or an error
// when it must be delivered again. The SQS Lambda and the embedded workers
// call the same Handle.
//
// Guarantees:
//   - Idempotent: what to do next is order.Order.NextStep of the stored state,
//     so a redelivered message never repeats a recorded step; every external
//     call carries the idempotency key services.Key(orderID, step), so a step
//     whose outcome was not recorded is repeated at the service without
//     effect.
//   - Every step is recorded through orders.Service.Update, the path the
//     API's cancel takes too: the append carries the version the step was
//     decided on, and on a conflict the state is reloaded and the step
//     decided again, never appended twice.
//   - Transient service failures are retried by redelivery (the queue's
//     visibility timeout, or --retry-backoff on the embedded runtime). The
//     attempt number is the message's ReceiveCount; a transient failure on
//     attempt MaxAttempts (3) ends the order Failed{step, attempts: 3,
//     reason}, refunding first if payment had succeeded, and the message is
//     removed.
//   - A message that can never be processed (undecodable, not OrderPlaced,
//     unknown order) returns an error wrapping ErrPoison; the queue retries it
//     and dead-letters it after its maximum receive count without blocking
//     other messages.
package processing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/services"
)

// MaxAttempts is how many attempts a step gets before the order fails; it
// equals the processing queue's maximum receive count.
const MaxAttempts = messaging.MaxReceiveCount

// maxDecisions bounds the steps and conflict retries of one Handle call.
const maxDecisions = 32

// ErrPoison marks a message that will never succeed: undecodable, not an
// OrderPlaced envelope, or naming an unknown order. Handle still returns it
// as an error so that the queue dead-letters the message after its maximum
// receive count (an SQS Lambda cannot dead-letter directly).
var ErrPoison = errors.New("processing: poison message")

// TransientError wraps a failure worth retrying (a service that did not
// answer, a store that was unavailable).
type TransientError struct {
	Step string
	Err  error
}

func (e *TransientError) Error() string {
	return fmt.Sprintf("processing: %s: transient: %v", e.Step, e.Err)
}

func (e *TransientError) Unwrap() error { return e.Err }

// IsPermanent reports whether err returned by Handle can never succeed on
// redelivery (the message is poison). Every other error is transient.
func IsPermanent(err error) bool { return errors.Is(err, ErrPoison) }

// Config wires a Processor.
type Config struct {
	Store     eventstore.Store
	Codec     *orders.Codec // nil: orders.NewCodec()
	Payment   services.Payment
	Inventory services.Inventory
	Clock     domain.Clock    // nil: domain.SystemClock
	IDs       domain.IDSource // nil: crypto-random ULIDs
	Logger    *slog.Logger    // nil: slog.Default()
}

// Processor runs the saga. It is safe for concurrent use.
type Processor struct {
	orders    *orders.Service
	payment   services.Payment
	inventory services.Inventory
	log       *slog.Logger
}

// New returns a Processor, or an error naming a missing dependency.
func New(cfg Config) (*Processor, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("processing: new: Store is required")
	case cfg.Payment == nil:
		return nil, errors.New("processing: new: Payment is required")
	case cfg.Inventory == nil:
		return nil, errors.New("processing: new: Inventory is required")
	}
	svc, err := orders.New(orders.Config{Store: cfg.Store, Codec: cfg.Codec, Clock: cfg.Clock, IDs: cfg.IDs})
	if err != nil {
		return nil, fmt.Errorf("processing: new: %w", err)
	}
	p := &Processor{orders: svc, payment: cfg.Payment, inventory: cfg.Inventory, log: cfg.Logger}
	if p.log == nil {
		p.log = slog.Default()
	}
	return p, nil
}

// Handle processes one message of the processing queue. nil means done
// (delete the message); an error means deliver it again later. See the
// package doc for the retry and dead-letter rules.
func (p *Processor) Handle(ctx context.Context, msg messaging.Message) error {
	var env eventstore.Event
	if err := json.Unmarshal(msg.Body, &env); err != nil {
		return fmt.Errorf("processing: message %s: undecodable body: %v: %w", msg.ID, err, ErrPoison)
	}
	if env.Type != order.TypePlaced {
		return fmt.Errorf("processing: message %s: unexpected event type %q: %w", msg.ID, env.Type, ErrPoison)
	}
	if !domain.ValidULID(env.StreamID) {
		return fmt.Errorf("processing: message %s: invalid order ID %q: %w", msg.ID, env.StreamID, ErrPoison)
	}
	attempt := max(msg.ReceiveCount, 1)
	meta := eventstore.Metadata{CorrelationID: env.Metadata.CorrelationID, CausationID: env.EventID}
	if meta.CorrelationID == "" {
		meta.CorrelationID = env.StreamID
	}
	return p.Process(ctx, env.StreamID, attempt, meta)
}

// Process drives order orderID as far as it can go on this attempt
// (1-based). It is Handle without the message decoding. Each step is one
// orders.Service.Update: the step is performed and decided on the state
// Update loaded, and recorded at that state's version.
func (p *Processor) Process(ctx context.Context, orderID string, attempt int, meta eventstore.Metadata) error {
	rejectedAt := int64(-1) // the version at which Decide last refused
	// charged is a charge this call made and has not seen recorded yet.
	// Money moved: if the order changed meanwhile (a cancel won the race
	// for the next version), the charge is still recorded, on whatever
	// state the order is in now, and then refunded if the order ended.
	var charged *order.RecordPayment
	for range maxDecisions {
		var step order.Step
		_, err := p.orders.Update(ctx, orderID, meta, func(o order.Order) ([]order.Event, error) {
			if !o.Exists() {
				return nil, order.ErrNotFound
			}
			step = o.NextStep()
			var cmd order.Command
			switch {
			case charged != nil && !o.Paid:
				step, cmd = order.StepCharge, *charged
			case step == order.StepNone:
				return nil, nil
			default:
				var err error
				if cmd, err = p.perform(ctx, o, step, attempt); err != nil {
					return nil, err
				}
				if rp, ok := cmd.(order.RecordPayment); ok {
					charged = &rp
				}
			}
			events, err := order.Decide(o, cmd)
			if err != nil {
				return nil, &rejection{version: o.Version, err: err}
			}
			return p.followUp(ctx, o, events, attempt), nil
		})
		var rej *rejection
		switch {
		case err == nil:
		case errors.As(err, &rej):
			if rejectedAt == rej.version {
				return &TransientError{Step: string(step), Err: fmt.Errorf("order %s: %w", orderID, rej.err)}
			}
			// The state may have moved under us in a way the command no
			// longer fits (e.g. the order was cancelled): reload and decide again.
			rejectedAt = rej.version
			p.log.WarnContext(ctx, "processing: decision rejected, reloading", "order_id", orderID, "step", step, "err", rej.err)
			continue
		case errors.Is(err, order.ErrNotFound):
			return fmt.Errorf("processing: order %s: %w", orderID, errors.Join(order.ErrNotFound, ErrPoison))
		case errors.Is(err, orders.ErrCorrupt):
			return fmt.Errorf("processing: order %s: %v: %w", orderID, err, ErrPoison)
		case errors.Is(err, ErrPoison):
			return err
		default:
			var te *TransientError
			if errors.As(err, &te) {
				return err
			}
			if step == "" {
				return &TransientError{Step: "load", Err: err}
			}
			return &TransientError{Step: string(step), Err: err}
		}
		if step == order.StepNone {
			return nil
		}
	}
	return &TransientError{Step: "decide", Err: fmt.Errorf("order %s: no progress after %d decisions", orderID, maxDecisions)}
}

// rejection is order.Decide refusing the command that recorded a step's
// outcome, at the order's version.
type rejection struct {
	version int64
	err     error
}

func (r *rejection) Error() string { return r.err.Error() }

// followUp returns events followed by the decisions of the steps they lead
// to that call no service (complete, fail), so that those are appended in the
// same atomic append instead of one more each: a completed order takes two
// appends (payment, then reservation and completion), not three. The events
// are exactly those the loop in Process would record one append at a time,
// since the state they are decided on is o with events applied, which is
// what a reload after the append would fold. A refusal stops the follow-up;
// Process then meets the step again after the append, as before.
func (p *Processor) followUp(ctx context.Context, o order.Order, events []order.Event, attempt int) []order.Event {
	next := o
	for _, e := range events {
		next = next.Apply(e)
	}
	for range maxDecisions {
		step := next.NextStep()
		if step != order.StepComplete && step != order.StepFail {
			break
		}
		cmd, err := p.perform(ctx, next, step, attempt)
		if err != nil {
			break
		}
		more, err := order.Decide(next, cmd)
		if err != nil || len(more) == 0 {
			break
		}
		for _, e := range more {
			next = next.Apply(e)
		}
		events = append(events, more...)
	}
	return events
}

// perform carries out step for o and returns the command recording its
// outcome, or an error when the message must be retried.
func (p *Processor) perform(ctx context.Context, o order.Order, step order.Step, attempt int) (order.Command, error) {
	final := attempt >= MaxAttempts
	switch step {
	case order.StepCharge:
		ch, err := p.payment.Charge(ctx, services.ChargeRequest{
			IdempotencyKey: services.Key(o.ID, services.StepCharge), OrderID: o.ID,
			CustomerName: o.CustomerName, ProductName: o.ProductName, Quantity: o.Quantity,
		})
		if err == nil {
			return order.RecordPayment{PaymentID: ch.PaymentID, Amount: ch.Amount}, nil
		}
		if reason, ok := services.IsRejected(err); ok {
			return order.RecordPaymentFailure{Reason: reason, Attempts: attempt}, nil
		}
		if final {
			return order.RecordPaymentFailure{Reason: "payment service unavailable: " + err.Error(), Attempts: attempt}, nil
		}
		return nil, &TransientError{Step: string(step), Err: err}
	case order.StepReserve:
		r, err := p.inventory.Reserve(ctx, services.ReserveRequest{
			IdempotencyKey: services.Key(o.ID, services.StepReserve), OrderID: o.ID,
			ProductName: o.ProductName, Quantity: o.Quantity,
		})
		if err == nil {
			return order.RecordReservation{ReservationID: r.ReservationID}, nil
		}
		if reason, ok := services.IsRejected(err); ok {
			return order.RecordReservationFailure{Reason: reason}, nil
		}
		if final {
			return order.RecordReservationFailure{Reason: "inventory service unavailable: " + err.Error()}, nil
		}
		return nil, &TransientError{Step: string(step), Err: err}
	case order.StepRefund:
		// A refund is never given up: ending a charged order without
		// compensation would keep the money. It is retried with the
		// queue's backoff, then dead-lettered (logged as an error: money is
		// owed) and redriven by the operator.
		reason := refundReason(o)
		if err := p.refund(ctx, services.RefundRequest{
			IdempotencyKey: services.Key(o.ID, services.StepRefund), OrderID: o.ID,
			PaymentID: o.PaymentID, Amount: o.Amount, Reason: reason,
		}); err != nil {
			if final {
				p.log.ErrorContext(ctx, "processing: refund owed: the refund failed on the last attempt; the message goes to the dead-letter queue, redrive it",
					"order_id", o.ID, "payment_id", o.PaymentID, "amount", o.Amount, "attempt", attempt, "err", err)
			}
			return nil, &TransientError{Step: string(step), Err: err}
		}
		return order.RecordRefund{PaymentID: o.PaymentID, Reason: reason}, nil
	case order.StepFail:
		s := string(order.StepReserve)
		if o.PaymentFailed {
			s = string(order.StepCharge)
		}
		return order.Fail{Reason: o.FailureReason, Step: s, Attempts: attempt}, nil
	case order.StepComplete:
		return order.Complete{}, nil
	}
	return nil, fmt.Errorf("processing: order %s: unknown step %q: %w", o.ID, step, ErrPoison)
}

// refundTries is how many times one delivery calls the payment service for
// a refund before leaving it to the queue's redelivery: money is owed, so a
// refund gets more tries than a charge (with redeliveries,
// refundTries x MaxAttempts before it is dead-lettered).
const refundTries = 5

// refund asks for req up to refundTries times, backing off from 20 ms.
func (p *Processor) refund(ctx context.Context, req services.RefundRequest) error {
	wait := 20 * time.Millisecond
	var err error
	for try := 1; ; try++ {
		if _, err = p.payment.Refund(ctx, req); err == nil || try == refundTries {
			return err
		}
		if _, rejected := services.IsRejected(err); rejected {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}

// refundReason says why o's charge is given back.
func refundReason(o order.Order) string {
	switch o.Status {
	case order.StatusCancelled:
		return "order cancelled during payment"
	case order.StatusFailed:
		return "order failed during payment"
	}
	return "inventory reservation failed: " + o.FailureReason
}
