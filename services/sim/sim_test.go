package sim

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/orderledger/orderledger/services"
)

// TestIdempotencyKeysAreBounded: the simulator remembers at most
// KeyCapacity keys, forgetting the oldest, so memory stays flat on a long
// run, while recent keys still answer with their first outcome.
func TestIdempotencyKeysAreBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	charge := func(i int) services.Charge {
		t.Helper()
		ch, err := s.Charge(ctx, services.ChargeRequest{IdempotencyKey: fmt.Sprintf("order-%d|payment", i), OrderID: "o", CustomerName: "c", ProductName: "p", Quantity: 1})
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	first := charge(0)
	for i := 1; i <= KeyCapacity; i++ {
		charge(i)
	}
	s.mu.Lock()
	done, tries := len(s.done), len(s.tries)
	s.mu.Unlock()
	if done > KeyCapacity || tries > KeyCapacity {
		t.Fatalf("remembers %d outcomes and %d try counts, want at most %d", done, tries, KeyCapacity)
	}
	last := charge(KeyCapacity)
	if again := charge(KeyCapacity); again != last {
		t.Fatalf("a recent key charged again: %+v then %+v", last, again)
	}
	if again := charge(0); again == first {
		t.Fatalf("the oldest key was not forgotten: %+v", again)
	}
}

// TestHeldIsChargesNetOfRefunds: Held counts each order's charges and
// refunds once, whatever the retries and duplicates.
func TestHeldIsChargesNetOfRefunds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := New(Config{UnitPrice: 250})
	if err != nil {
		t.Fatal(err)
	}
	charge := func(order string, qty int) services.Charge {
		t.Helper()
		ch, err := s.Charge(ctx, services.ChargeRequest{IdempotencyKey: services.Key(order, services.StepCharge), OrderID: order, CustomerName: "c", ProductName: "p", Quantity: qty})
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	a := charge("A", 2)
	charge("A", 2) // a duplicate: charged once
	charge("B", 3)
	for range 2 { // a duplicate refund refunds once
		if _, err := s.Refund(ctx, services.RefundRequest{IdempotencyKey: services.Key("A", services.StepRefund), OrderID: "A", PaymentID: a.PaymentID, Amount: a.Amount}); err != nil {
			t.Fatal(err)
		}
	}
	held := s.Held()
	if len(held) != 2 || held["A"] != 0 || held["B"] != 750 {
		t.Fatalf("Held = %v, want A refunded to 0 and B holding 750", held)
	}
}

// TestIDsUniqueAcrossSimulators: a simulator started again (same knobs,
// same seed, same idempotency keys, as after a restart on one data
// directory) never issues an ID the first one issued.
func TestIDsUniqueAcrossSimulators(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	seen := map[string]int{}
	for run := range 2 {
		s, err := New(Config{Seed: 42})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			key := fmt.Sprintf("order-%d", i)
			ch, err := s.Charge(ctx, services.ChargeRequest{IdempotencyKey: key + "|payment", OrderID: "o", CustomerName: "c", ProductName: "p", Quantity: 1})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Reserve(ctx, services.ReserveRequest{IdempotencyKey: key + "|reservation", OrderID: "o", ProductName: "p", Quantity: 1})
			if err != nil {
				t.Fatal(err)
			}
			ref, err := s.Refund(ctx, services.RefundRequest{IdempotencyKey: key + "|refund", PaymentID: ch.PaymentID})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{ch.PaymentID, res.ReservationID, ref.RefundID} {
				if prev, dup := seen[id]; dup {
					t.Fatalf("simulator %d issued %s, which simulator %d had issued", run, id, prev)
				}
				seen[id] = run
			}
		}
	}
}

// TestRefundErrorRateFailsRefundsOnly: at 1 every refund fails
// transiently while charges succeed, and out of range is refused.
func TestRefundErrorRateFailsRefundsOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := New(Config{RefundErrorRate: 1})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Charge(ctx, services.ChargeRequest{IdempotencyKey: services.Key("A", services.StepCharge), OrderID: "A", CustomerName: "c", ProductName: "p", Quantity: 1})
	if err != nil {
		t.Fatalf("charge with RefundErrorRate 1: %v", err)
	}
	for range 3 {
		_, err := s.Refund(ctx, services.RefundRequest{IdempotencyKey: services.Key("A", services.StepRefund), OrderID: "A", PaymentID: ch.PaymentID, Amount: ch.Amount})
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("refund = %v, want ErrUnavailable", err)
		}
	}
	if held := s.Held(); held["A"] != ch.Amount {
		t.Errorf("Held = %v, want the charge still held", held)
	}
	for _, r := range []float64{-0.1, 1.5} {
		if _, err := New(Config{RefundErrorRate: r}); err == nil {
			t.Errorf("RefundErrorRate %v accepted", r)
		}
	}
}
