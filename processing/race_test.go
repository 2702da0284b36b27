package processing_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/dynamostore"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/processing"
	"github.com/orderledger/orderledger/services"
	"github.com/orderledger/orderledger/services/sim"
)

// racyPayment is the simulator behind a payment port that lets a test act
// while a charge is in flight (before the service answers) and fail
// refunds a number of times.
type racyPayment struct {
	*sim.Simulator
	mu           sync.Mutex
	duringCharge func()
	failRefunds  int
	refundCalls  int
	// loseAnswers is how many charges to make and then answer an error, as
	// a processor that dies after the call, or a dropped response, would.
	loseAnswers int
}

func (p *racyPayment) Charge(ctx context.Context, req services.ChargeRequest) (services.Charge, error) {
	p.mu.Lock()
	f := p.duringCharge
	p.duringCharge = nil
	p.mu.Unlock()
	if f != nil {
		f()
	}
	ch, err := p.Simulator.Charge(ctx, req)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil && p.loseAnswers > 0 {
		p.loseAnswers--
		return services.Charge{}, errors.New("connection reset after the request was sent")
	}
	return ch, err
}

func (p *racyPayment) Refund(ctx context.Context, req services.RefundRequest) (services.Refund, error) {
	p.mu.Lock()
	p.refundCalls++
	fail := p.refundCalls <= p.failRefunds
	p.mu.Unlock()
	if fail {
		return services.Refund{}, sim.ErrUnavailable
	}
	return p.Simulator.Refund(ctx, req)
}

// backends runs f once per event store: pebble in t.TempDir(), and
// DynamoDB on the AWS emulator (skipped without one, failed under CI).
// The saga is the same code on both.
func backends(t *testing.T, f func(t *testing.T, store eventstore.Store)) {
	t.Run("pebble", func(t *testing.T) {
		t.Parallel()
		_, store, _ := setup(t, sim.Config{})
		f(t, store)
	})
	t.Run("dynamodb", func(t *testing.T) {
		t.Parallel()
		db := awstest.Clients(t).DynamoDB
		store, err := dynamostore.New(db, awstest.Table(t, db, "events"), dynamostore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		f(t, store)
	})
}

func racySetup(t *testing.T, store eventstore.Store, pay *racyPayment, log *slog.Logger) *processing.Processor {
	t.Helper()
	s, err := sim.New(sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pay.Simulator = s
	p, err := processing.New(processing.Config{Store: store, Payment: pay, Inventory: s, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cancelNow cancels order id as the API's cancel handler does.
func cancelNow(t *testing.T, store eventstore.Store, id string) {
	t.Helper()
	svc, err := orders.New(orders.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Update(context.Background(), id, eventstore.Metadata{RequestID: "cancel"}, func(o order.Order) ([]order.Event, error) {
		return order.Decide(o, order.Cancel{Reason: "changed my mind"})
	}); err != nil {
		t.Fatalf("cancel during the charge: %v", err)
	}
}

// TestChargeThatRacesACancelIsRecordedAndRefunded: the customer cancels
// while the payment service is charging. The charge lands anyway; the
// ledger records it on the cancelled order, refunds it, and records that.
func TestChargeThatRacesACancelIsRecordedAndRefunded(t *testing.T) {
	t.Parallel()
	backends(t, chargeThatRacesACancel)
}

func chargeThatRacesACancel(t *testing.T, store eventstore.Store) {
	pay := &racyPayment{}
	p := racySetup(t, store, pay, slog.New(slog.NewTextHandler(io.Discard, nil)))
	id, msg := placed(t, store, 1)
	pay.duringCharge = func() { cancelNow(t, store, id) }

	if err := p.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	want := []string{order.TypePlaced, order.TypeCancelled, order.TypePaymentSucceeded, order.TypePaymentRefunded}
	if got := types(t, store, id); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v: the late charge and its refund recorded on the cancelled order", got, want)
	}
	st := pay.Stats()
	if st.Charges != 1 || st.Refunds != 1 {
		t.Fatalf("payment service %+v, want one charge and one refund", st)
	}
	h := history(t, store, id)
	if !strings.Contains(string(h.Events[3].Data), "order cancelled during payment") {
		t.Errorf("refund event %s does not say why", h.Events[3].Data)
	}
	// A redelivery changes nothing and calls nothing.
	msg.ReceiveCount = 2
	if err := p.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if got := types(t, store, id); !slices.Equal(got, want) {
		t.Fatalf("after a redelivery: %v, want %v", got, want)
	}
	if after := pay.Stats(); after.Charges != 1 || after.Refunds != 1 {
		t.Fatalf("a redelivery called the payment service: %+v", after)
	}
}

// TestChargeLostThenCancelled: the processor charges and never learns it
// (it dies after the call, or the answer is lost), and the customer cancels
// before the next delivery. The next delivery finds the order cancelled with
// no charge recorded; it voids the payment request, which answers the charge
// that landed; the ledger records it on the cancelled order and refunds it.
func TestChargeLostThenCancelled(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store eventstore.Store) {
		pay := &racyPayment{loseAnswers: 1}
		p := racySetup(t, store, pay, slog.New(slog.NewTextHandler(io.Discard, nil)))
		id, msg := placed(t, store, 1)
		if err := p.Handle(context.Background(), msg); err == nil {
			t.Fatal("the delivery whose answer was lost succeeded")
		}
		cancelNow(t, store, id)
		msg.ReceiveCount = 2
		if err := p.Handle(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		want := []string{order.TypePlaced, order.TypeAttemptFailed, order.TypeCancelled, order.TypePaymentSucceeded, order.TypePaymentRefunded}
		if got := types(t, store, id); !slices.Equal(got, want) {
			t.Fatalf("history %v, want %v", got, want)
		}
		if held := pay.Held()[id]; held != 0 {
			t.Fatalf("the payment service holds %d for the cancelled order, want 0", held)
		}
		if st := pay.Stats(); st.Charges != 1 || st.Refunds != 1 {
			t.Fatalf("payment service %+v, want one charge and one refund", st)
		}
	})
}

// TestCancelledBeforeChargeIsVoided: an order cancelled before the
// processor charged it has its payment request voided, so a charge still in
// flight (a slow delivery) is refused and nothing is held.
func TestCancelledBeforeChargeIsVoided(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store eventstore.Store) {
		pay := &racyPayment{}
		p := racySetup(t, store, pay, slog.New(slog.NewTextHandler(io.Discard, nil)))
		id, msg := placed(t, store, 1)
		cancelNow(t, store, id)
		if err := p.Handle(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		want := []string{order.TypePlaced, order.TypeCancelled, order.TypePaymentVoided}
		if got := types(t, store, id); !slices.Equal(got, want) {
			t.Fatalf("history %v, want %v", got, want)
		}
		if _, err := pay.Charge(context.Background(), services.ChargeRequest{IdempotencyKey: services.Key(id, services.StepCharge), OrderID: id, Quantity: 1}); err == nil {
			t.Fatal("a charge after the void succeeded")
		}
		if held := pay.Held()[id]; held != 0 {
			t.Fatalf("held %d after the void, want 0", held)
		}
	})
}

// TestRefundIsRetriedAndNeverDropped: the refund of a late charge fails on
// every try of every delivery. Each delivery retries it with backoff, then
// answers an error (the queue redelivers, then dead-letters); the last one
// logs that money is owed; a redriven message finishes the refund.
func TestRefundIsRetriedAndNeverDropped(t *testing.T) {
	t.Parallel()
	backends(t, refundIsRetriedAndNeverDropped)
}

func refundIsRetriedAndNeverDropped(t *testing.T, store eventstore.Store) {
	var logs bytes.Buffer
	pay := &racyPayment{failRefunds: 1 << 20}
	p := racySetup(t, store, pay, slog.New(slog.NewTextHandler(&logs, nil)))
	id, msg := placed(t, store, 1)
	pay.duringCharge = func() { cancelNow(t, store, id) }

	for attempt := 1; attempt <= processing.MaxAttempts; attempt++ {
		msg.ReceiveCount = attempt
		err := p.Handle(context.Background(), msg)
		var te *processing.TransientError
		if !errors.As(err, &te) || te.Step != string(order.StepRefund) {
			t.Fatalf("attempt %d = %v, want a transient refund error (redeliver)", attempt, err)
		}
		owed := strings.Contains(logs.String(), "money owed")
		if owed != (attempt == processing.MaxAttempts) {
			t.Fatalf("attempt %d: 'money owed' logged = %v, want it on the last attempt only; logs:\n%s", attempt, owed, logs.String())
		}
	}
	want := []string{order.TypePlaced, order.TypeCancelled, order.TypePaymentSucceeded}
	all := types(t, store, id)
	if got := outcomes(all); !slices.Equal(got, want) {
		t.Fatalf("history while the refund fails %v, want %v (the charge recorded, no refund yet)", got, want)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), id) {
		t.Fatalf("the owed refund is not an error naming the order:\n%s", logs.String())
	}
	pay.mu.Lock()
	calls := pay.refundCalls
	pay.failRefunds = 0 // the payment service recovers
	pay.mu.Unlock()
	if calls <= processing.MaxAttempts {
		t.Fatalf("%d refund calls over %d deliveries: a refund must be retried within the last delivery too", calls, processing.MaxAttempts)
	}
	if tried := len(all) - len(outcomes(all)); tried != calls {
		t.Fatalf("%d failed refund tries in the history, %d calls made: want each try recorded", tried, calls)
	}
	// The operator redrives the dead letter: its receive count starts again.
	msg.ReceiveCount = 1
	if err := p.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	want = append(want, order.TypePaymentRefunded)
	if got := outcomes(types(t, store, id)); !slices.Equal(got, want) {
		t.Fatalf("history after the redrive %v, want %v", got, want)
	}
	if st := pay.Stats(); st.Charges != 1 || st.Refunds != 1 {
		t.Fatalf("payment service %+v, want one charge and one refund", st)
	}
}

// outcomes is a history's event types without the failed tries.
func outcomes(types []string) []string {
	return slices.DeleteFunc(slices.Clone(types), func(s string) bool { return s == order.TypeAttemptFailed })
}

func history(t *testing.T, store eventstore.Store, id string) orders.History {
	t.Helper()
	svc, err := orders.New(orders.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	h, err := svc.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
