// Package processing is the order saga: for a placed order it charges
// payment, then reserves inventory, recording each outcome in the order's
// stream, and completes or fails the order; when inventory fails after a
// successful charge it refunds first (compensation), then fails.
//
// Every call that can move money ends in the order's history. A charge that
// lands after the order was cancelled (the customer cancelled while the
// payment service was charging) is recorded on the cancelled order and
// refunded. An order that ends with no charge recorded and no final word from
// the payment service (cancelled before its charge, or failed because the
// service never answered) has its payment request voided (services.Payment
// Void): a charge still in flight is then refused, and one that landed
// unseen (a processor that died after the call, a lost answer) is answered
// by the void, recorded, and refunded. So an order that ends Cancelled or
// Failed holds nothing at the payment service once it is Settled.
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
//   - Attempts are counted per step, in the history: a try that fails
//     transiently is recorded as AttemptFailed{step, attempt, reason} and
//     retried by redelivery (the queue's visibility timeout, or
//     --retry-backoff on the embedded runtime). The third failed try of a
//     charge or a reservation ends the order Failed{step, attempts: 3}
//     (refunding first if payment had succeeded, voiding the payment request
//     if the charge went unanswered). The outcome events carry their step's
//     tries, so "payment retried twice, then a reservation retried once"
//     reads as such.
//   - The queue delivers a message MaxReceiveCount (3) times. On the last
//     delivery the failing step's remaining tries are made in process, with
//     backoff from 20 ms, so a step that starts late still gets its three.
//   - A refund or a void is never given up: each failed try is recorded, and
//     when the last delivery's tries (5) fail too, an error-level log line
//     says money is owed and the message goes to the dead-letter queue, whose
//     state-aware redrive (orders.RedriveDeadLetters) sends it back.
//   - A message that can never be processed (undecodable, not OrderPlaced,
//     unknown order) returns an error wrapping ErrPoison; the queue retries it
//     and dead-letters it after its maximum receive count without blocking
//     other messages.
//
// Tracing: Handle continues the trace of the message's traceparent
// attribute (or else of the OrderPlaced event's Metadata.TraceParent) in a
// "process order" span, with one "saga <step>" span per decision and a
// client span per service call ("payment charge", "inventory reserve",
// "payment refund", "payment void") inside it; the events each step
// appends carry its trace (package orders), so the outcome events and the
// notification they cause join the request's trace. Log lines carry the
// order ID from the context (internal/logging).
//
// Caveat: a reservation that lands unseen after its last try (the inventory
// service never answered) is not released: stock is not money, and the
// inventory port has no void. The order fails and is refunded as usual.
package processing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/logging"
	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/services"
)

// MaxAttempts is how many tries a charge or a reservation gets before the
// order fails.
const MaxAttempts = 3

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
	// InlineBackoff is the wait before the first in-process retry on a
	// message's last delivery, doubling after each (0: 20 ms).
	InlineBackoff time.Duration
	// OneStepPerAppend appends each step's outcome on its own instead of
	// folding the steps that call no service (complete, fail) into the
	// append before them. Set it on DynamoDB, where an append of several
	// events is a transaction billed at twice the write units of single
	// puts: a completed order then costs 4 write units of events, not 6.
	// Nothing is weakened: a crash between the two appends leaves the order
	// at the step before, which the next delivery resumes.
	OneStepPerAppend bool
	// Observer, when set, is told what the saga does (the runtime's
	// metrics); nil observes nothing.
	Observer Observer
}

// Observer is told what the saga does, as it happens, for metrics. Its
// methods must be cheap and safe for concurrent use.
type Observer interface {
	// Delivered: a message of the processing queue handed to the saga, with
	// its receive count (1 for a first delivery).
	Delivered(receiveCount int)
	// Decided: one decision of the saga on a step: result "ok" (its outcome
	// recorded), "failed_try" (a failed try recorded; it is tried again) or
	// "rejected" (the order had moved; decided again on the fresh state).
	Decided(step order.Step, result string)
	// MoneyOwed: a refund or a void failed on the message's last delivery;
	// the message goes to the dead-letter queue for an operator's redrive.
	MoneyOwed(step order.Step)
}

type noObserver struct{}

func (noObserver) Delivered(int)              {}
func (noObserver) Decided(order.Step, string) {}
func (noObserver) MoneyOwed(order.Step)       {}

// Processor runs the saga. It is safe for concurrent use.
type Processor struct {
	orders    *orders.Service
	payment   services.Payment
	inventory services.Inventory
	log       *slog.Logger
	backoff   time.Duration
	oneStep   bool
	observe   Observer
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
	p := &Processor{orders: svc, payment: cfg.Payment, inventory: cfg.Inventory, log: cfg.Logger, backoff: cfg.InlineBackoff, oneStep: cfg.OneStepPerAppend, observe: cfg.Observer}
	if p.observe == nil {
		p.observe = noObserver{}
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.backoff <= 0 {
		p.backoff = inlineBackoff
	}
	return p, nil
}

// Handle processes one message of the processing queue. nil means done
// (delete the message); an error means deliver it again later. See the
// package doc for the retry and dead-letter rules.
func (p *Processor) Handle(ctx context.Context, msg messaging.Message) error {
	p.observe.Delivered(msg.ReceiveCount)
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
	meta := eventstore.Metadata{CorrelationID: env.Metadata.CorrelationID, CausationID: env.EventID}
	if meta.CorrelationID == "" {
		meta.CorrelationID = env.StreamID
	}
	// Continue the trace of the publish that sent the message, or else of
	// the append that stored the event.
	ctx = tracing.ContinueFirst(ctx, msg.Attributes[messaging.AttrTraceParent], env.Metadata.TraceParent)
	ctx, span := tracing.Start(logging.WithOrderID(ctx, env.StreamID), "process order", trace.SpanKindConsumer,
		attribute.String("order_id", env.StreamID), attribute.String("messaging.message.id", msg.ID),
		attribute.Int("messaging.receive_count", msg.ReceiveCount))
	err := p.Process(ctx, env.StreamID, msg.ReceiveCount >= messaging.MaxReceiveCount, meta)
	tracing.End(span, err)
	return err
}

// Process drives order orderID as far as it can go on this delivery. It is
// Handle without the message decoding; last says that the queue will not
// deliver the message again, so the remaining tries of a failing step are
// made now, with backoff, rather than on redeliveries. Each step is one
// orders.Service.Update: the step is performed and decided on the state
// Update loaded, and recorded at that state's version.
func (p *Processor) Process(ctx context.Context, orderID string, last bool, meta eventstore.Metadata) error {
	rejectedAt := int64(-1) // the version at which Decide last refused
	// charged is a charge this call made and has not seen recorded yet.
	// Money moved: if the order changed meanwhile (a cancel won the race
	// for the next version), the charge is still recorded, on whatever
	// state the order is in now, and then refunded if the order ended.
	var charged *order.RecordPayment
	wait, inline := p.backoff, 0
	// st is the order as this call last appended it: each decision after
	// the first starts from it instead of reading the stream again (one
	// read per message, not one per step; a writer in between makes the
	// append conflict and the stream is read again, see orders.UpdateFrom).
	var st orders.Stream
	for range maxDecisions {
		if settled(st, charged) {
			// What this call last appended leaves nothing to do: deciding
			// again on it (no read, no append) would find nothing, so the
			// delivery is done without that decision and its span.
			return nil
		}
		var step order.Step
		var retry *attemptError // a failed try, recorded: try again
		// One span per decision, named after the step it took ("saga
		// settled" when a delivery finds nothing left to do). It carries
		// no attribute: the order ID is its parent's, "process order".
		sctx, span := tracing.Start(ctx, "saga step", trace.SpanKindInternal)
		next, err := p.orders.UpdateFrom(sctx, orderID, st, meta, func(o order.Order) ([]order.Event, error) {
			if !o.Exists() {
				return nil, order.ErrNotFound
			}
			step, retry = o.NextStep(), nil
			var cmd order.Command
			switch {
			case charged != nil && !o.Paid:
				step, cmd = order.StepCharge, *charged
			case step == order.StepNone:
				return nil, nil
			default:
				var err error
				if cmd, err = p.perform(sctx, o, step); errors.As(err, &retry) {
					cmd = order.RecordAttemptFailure{Step: step, Attempt: retry.attempt, Reason: retry.err.Error()}
				} else if err != nil {
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
			if retry != nil || p.oneStep {
				return events, nil
			}
			return p.followUp(sctx, o, events), nil
		})
		endStep(span, step, retry, err)
		st = orders.Stream{}
		var rej *rejection
		switch {
		case err == nil:
			st = next
			switch {
			case step == order.StepNone:
			case retry != nil:
				p.observe.Decided(step, "failed_try")
			default:
				p.observe.Decided(step, "ok")
			}
		case errors.As(err, &rej):
			p.observe.Decided(step, "rejected")
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
		if retry == nil {
			continue
		}
		// A try failed and is recorded. Before the last delivery the queue
		// retries it with its backoff; on the last one the step's tries
		// left are made here (a charge's and a reservation's run out after
		// MaxAttempts and decide the outcome; a refund's or a void's never
		// do, so they stop after inlineTries and the message is
		// dead-lettered: money is owed, the operator redrives it).
		if !last || inline >= inlineTries {
			if last && (step == order.StepRefund || step == order.StepVoid) {
				p.observe.MoneyOwed(step)
				p.log.ErrorContext(ctx, "processing: money owed: the "+string(step)+" failed on the last delivery; the message goes to the dead-letter queue, redrive it",
					"order_id", orderID, "step", step, "attempt", retry.attempt, "err", retry.err)
			}
			return &TransientError{Step: string(step), Err: retry.err}
		}
		inline++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return &TransientError{Step: string(step), Err: errors.Join(retry.err, ctx.Err())}
		case <-t.C:
		}
		wait *= 2
	}
	return &TransientError{Step: "decide", Err: fmt.Errorf("order %s: no progress after %d decisions", orderID, maxDecisions)}
}

// settled reports whether st, the order as Process last appended it (not
// reloaded), needs no further decision: no step is next and no charge made
// by this call is waiting to be recorded. The decision Process would make
// on it returns no events.
func settled(st orders.Stream, charged *order.RecordPayment) bool {
	return len(st.Events) > 0 && st.Order.NextStep() == order.StepNone && (charged == nil || st.Order.Paid)
}

// endStep names and ends the span of one decision of Process.
func endStep(span trace.Span, step order.Step, retry *attemptError, err error) {
	name := string(step)
	if step == order.StepNone {
		name = "settled"
	}
	span.SetName("saga " + name)
	if retry != nil {
		span.SetAttributes(attribute.Int("attempt", retry.attempt))
		err = retry
	}
	tracing.End(span, err)
}

// callSpan starts the span of a call to a service; end it with tracing.End.
// It carries no attribute: the order ID is on "process order", two spans up.
func callSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	return tracing.Start(ctx, name, trace.SpanKindClient)
}

// inlineTries bounds the tries one delivery makes of a failing step when it
// is the message's last (see Process); inlineBackoff is the default wait
// before the first of them (Config.InlineBackoff), doubling after each.
const (
	inlineTries   = 5
	inlineBackoff = 20 * time.Millisecond
)

// attemptError is one failed try of a step that has tries left: recorded
// as an AttemptFailed, then tried again.
type attemptError struct {
	attempt int
	err     error
}

func (e *attemptError) Error() string {
	return fmt.Sprintf("processing: attempt %d failed: %v", e.attempt, e.err)
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
func (p *Processor) followUp(ctx context.Context, o order.Order, events []order.Event) []order.Event {
	next := o
	for _, e := range events {
		next = next.Apply(e)
	}
	for range maxDecisions {
		step := next.NextStep()
		if step != order.StepComplete && step != order.StepFail {
			break
		}
		cmd, err := p.perform(ctx, next, step)
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
// outcome, an *attemptError for a failed try to record and repeat, or
// another error when the message must be retried as it is.
func (p *Processor) perform(ctx context.Context, o order.Order, step order.Step) (order.Command, error) {
	attempt := o.Attempt(step)
	switch step {
	case order.StepCharge:
		cctx, span := callSpan(ctx, "payment charge")
		ch, err := p.payment.Charge(cctx, services.ChargeRequest{
			IdempotencyKey: services.Key(o.ID, services.StepCharge), OrderID: o.ID,
			CustomerName: o.CustomerName, ProductName: o.ProductName, Quantity: o.Quantity,
		})
		tracing.End(span, err)
		if err == nil {
			return order.RecordPayment{PaymentID: ch.PaymentID, Amount: ch.Amount, Attempts: attempt}, nil
		}
		if reason, ok := services.IsRejected(err); ok {
			return order.RecordPaymentFailure{Reason: reason, Attempts: attempt}, nil
		}
		if attempt < MaxAttempts {
			return nil, &attemptError{attempt: attempt, err: err}
		}
		// The service never answered: the order fails, and a charge that
		// may have landed unseen is the void's to find (the next step).
		return order.RecordPaymentFailure{Reason: "payment service unavailable: " + err.Error(), Attempts: attempt, Unconfirmed: true}, nil
	case order.StepReserve:
		cctx, span := callSpan(ctx, "inventory reserve")
		r, err := p.inventory.Reserve(cctx, services.ReserveRequest{
			IdempotencyKey: services.Key(o.ID, services.StepReserve), OrderID: o.ID,
			ProductName: o.ProductName, Quantity: o.Quantity,
		})
		tracing.End(span, err)
		if err == nil {
			return order.RecordReservation{ReservationID: r.ReservationID, Attempts: attempt}, nil
		}
		if reason, ok := services.IsRejected(err); ok {
			return order.RecordReservationFailure{Reason: reason, Attempts: attempt}, nil
		}
		if attempt < MaxAttempts {
			return nil, &attemptError{attempt: attempt, err: err}
		}
		return order.RecordReservationFailure{Reason: "inventory service unavailable: " + err.Error(), Attempts: attempt, Unconfirmed: true}, nil
	case order.StepRefund:
		// A refund is never given up: ending a charged order without
		// compensation would keep the money. Every failed try is recorded
		// and retried; see Process for the last delivery.
		reason := refundReason(o)
		cctx, span := callSpan(ctx, "payment refund")
		_, err := p.payment.Refund(cctx, services.RefundRequest{
			IdempotencyKey: services.Key(o.ID, services.StepRefund), OrderID: o.ID,
			PaymentID: o.PaymentID, Amount: o.Amount, Reason: reason,
		})
		tracing.End(span, err)
		if err != nil {
			return nil, &attemptError{attempt: attempt, err: err}
		}
		return order.RecordRefund{PaymentID: o.PaymentID, Reason: reason, Attempts: attempt}, nil
	case order.StepVoid:
		// An order that ended with no charge recorded and no final word
		// from the payment service (cancelled before it, or failed
		// unanswered): close the payment request, so that a charge in
		// flight is refused, and learn of one that landed unseen (then
		// record it; its refund is the next step). Never given up, like a
		// refund.
		reason := voidReason(o)
		cctx, span := callSpan(ctx, "payment void")
		v, err := p.payment.Void(cctx, services.VoidRequest{
			IdempotencyKey: services.Key(o.ID, services.StepCharge), OrderID: o.ID, Reason: reason,
		})
		tracing.End(span, err)
		switch {
		case err != nil:
			return nil, &attemptError{attempt: attempt, err: err}
		case v.Charged:
			return order.RecordPayment{PaymentID: v.Charge.PaymentID, Amount: v.Charge.Amount, Attempts: o.Attempt(order.StepCharge)}, nil
		}
		return order.RecordVoid{Reason: reason, Attempts: attempt}, nil
	case order.StepFail:
		if o.PaymentFailed {
			return order.Fail{Reason: o.FailureReason, Step: string(order.StepCharge), Attempts: max(o.PaymentAttempts, 1)}, nil
		}
		return order.Fail{Reason: o.FailureReason, Step: string(order.StepReserve), Attempts: max(o.ReserveAttempts, 1)}, nil
	case order.StepComplete:
		return order.Complete{}, nil
	}
	return nil, fmt.Errorf("processing: order %s: unknown step %q: %w", o.ID, step, ErrPoison)
}

// voidReason says why o's payment request is voided.
func voidReason(o order.Order) string {
	if o.Status == order.StatusCancelled {
		return "order cancelled before a charge was recorded"
	}
	return "payment service never answered: " + o.FailureReason
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
