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
}

func (p *racyPayment) Charge(ctx context.Context, req services.ChargeRequest) (services.Charge, error) {
	p.mu.Lock()
	f := p.duringCharge
	p.duringCharge = nil
	p.mu.Unlock()
	if f != nil {
		f()
	}
	return p.Simulator.Charge(ctx, req)
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
		owed := strings.Contains(logs.String(), "refund owed")
		if owed != (attempt == processing.MaxAttempts) {
			t.Fatalf("attempt %d: 'refund owed' logged = %v, want it on the last attempt only; logs:\n%s", attempt, owed, logs.String())
		}
	}
	want := []string{order.TypePlaced, order.TypeCancelled, order.TypePaymentSucceeded}
	if got := types(t, store, id); !slices.Equal(got, want) {
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
		t.Fatalf("%d refund calls over %d deliveries: a refund must be retried within a delivery too", calls, processing.MaxAttempts)
	}
	// The operator redrives the dead letter: its receive count starts again.
	msg.ReceiveCount = 1
	if err := p.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	want = append(want, order.TypePaymentRefunded)
	if got := types(t, store, id); !slices.Equal(got, want) {
		t.Fatalf("history after the redrive %v, want %v", got, want)
	}
	if st := pay.Stats(); st.Charges != 1 || st.Refunds != 1 {
		t.Fatalf("payment service %+v, want one charge and one refund", st)
	}
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
