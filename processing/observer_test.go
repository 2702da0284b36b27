package processing_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/processing"
	"github.com/orderledger/orderledger/services/sim"
)

// recorder is a processing.Observer that keeps what it is told.
type recorder struct {
	mu        sync.Mutex
	delivered []int
	decided   []string
	owed      []order.Step
}

func (r *recorder) Delivered(n int) { r.mu.Lock(); r.delivered = append(r.delivered, n); r.mu.Unlock() }
func (r *recorder) Decided(s order.Step, res string) {
	r.mu.Lock()
	r.decided = append(r.decided, string(s)+":"+res)
	r.mu.Unlock()
}
func (r *recorder) MoneyOwed(s order.Step) { r.mu.Lock(); r.owed = append(r.owed, s); r.mu.Unlock() }

// TestObserverSeesDeliveriesAndDecisions: the observer is told each
// delivery's receive count and each decision of the saga with its result.
func TestObserverSeesDeliveriesAndDecisions(t *testing.T) {
	t.Parallel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Run("completed", func(t *testing.T) {
		t.Parallel()
		_, store, s := setup(t, sim.Config{})
		r := &recorder{}
		p, err := processing.New(processing.Config{Store: store, Payment: s, Inventory: s, Logger: quiet, Observer: r})
		if err != nil {
			t.Fatal(err)
		}
		_, msg := placed(t, store, 1)
		if err := p.Handle(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		// The completion is folded into the reservation's append.
		if !slices.Equal(r.delivered, []int{msg.ReceiveCount}) || !slices.Equal(r.decided, []string{"payment:ok", "inventory:ok"}) || len(r.owed) != 0 {
			t.Fatalf("observed deliveries %v, decisions %v, owed %v", r.delivered, r.decided, r.owed)
		}
	})
	t.Run("payment down", func(t *testing.T) {
		t.Parallel()
		_, store, s := setup(t, sim.Config{PaymentErrorRate: 1})
		r := &recorder{}
		p, err := processing.New(processing.Config{Store: store, Payment: s, Inventory: s, Logger: quiet, Observer: r})
		if err != nil {
			t.Fatal(err)
		}
		_, msg := placed(t, store, 1)
		if err := p.Handle(context.Background(), msg); err == nil {
			t.Fatal("a payment service that always fails did not fail the delivery")
		}
		if !slices.Equal(r.decided, []string{"payment:failed_try"}) {
			t.Fatalf("observed decisions %v, want one failed payment try", r.decided)
		}
	})
	t.Run("refund owed on the last delivery", func(t *testing.T) {
		t.Parallel()
		_, store, s := setup(t, sim.Config{InventoryStock: 1, RefundErrorRate: 1})
		r := &recorder{}
		p, err := processing.New(processing.Config{Store: store, Payment: s, Inventory: s, Logger: quiet, Observer: r, InlineBackoff: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, msg := placed(t, store, 2)
		msg.ReceiveCount = messaging.MaxReceiveCount
		if err := p.Handle(context.Background(), msg); err == nil {
			t.Fatal("a refund that always fails did not fail the delivery")
		}
		if !slices.Equal(r.owed, []order.Step{order.StepRefund}) || !slices.Contains(r.decided, "refund:failed_try") {
			t.Fatalf("observed owed %v, decisions %v; want the refund owed after failed tries", r.owed, r.decided)
		}
	})
}
