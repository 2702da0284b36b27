package servicehttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/orderledger/orderledger/services"
	"github.com/orderledger/orderledger/services/servicehttp"
	"github.com/orderledger/orderledger/services/sim"
)

type both interface {
	services.Payment
	services.Inventory
}

// adapters runs fn against the simulator in process and over real HTTP.
func adapters(t *testing.T, cfg sim.Config, fn func(t *testing.T, svc both, s *sim.Simulator)) {
	t.Run("sim", func(t *testing.T) {
		t.Parallel()
		s, err := sim.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		fn(t, s, s)
	})
	t.Run("http", func(t *testing.T) {
		t.Parallel()
		s, err := sim.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(servicehttp.Handler(s))
		t.Cleanup(srv.Close)
		c, err := servicehttp.New(srv.URL, 0)
		if err != nil {
			t.Fatal(err)
		}
		fn(t, c, s)
	})
}

func charge(id string, qty int) services.ChargeRequest {
	return services.ChargeRequest{IdempotencyKey: services.Key(id, services.StepCharge), OrderID: id, CustomerName: "Ada", ProductName: "widget", Quantity: qty}
}

func reserve(id string, qty int) services.ReserveRequest {
	return services.ReserveRequest{IdempotencyKey: services.Key(id, services.StepReserve), OrderID: id, ProductName: "widget", Quantity: qty}
}

func TestChargeIsIdempotent(t *testing.T) {
	t.Parallel()
	adapters(t, sim.Config{}, func(t *testing.T, svc both, s *sim.Simulator) {
		ctx := context.Background()
		a, err := svc.Charge(ctx, charge("o1", 3))
		if err != nil {
			t.Fatal(err)
		}
		b, err := svc.Charge(ctx, charge("o1", 3))
		if err != nil {
			t.Fatal(err)
		}
		if a != b || a.Amount != 3*sim.DefaultUnitPrice || a.PaymentID == "" {
			t.Fatalf("charges %+v and %+v: want one charge of %d repeated", a, b, 3*sim.DefaultUnitPrice)
		}
		if st := s.Stats(); st.Charges != 1 || st.Duplicates != 1 {
			t.Fatalf("stats %+v: want 1 charge and 1 duplicate", st)
		}
		r1, err := svc.Refund(ctx, services.RefundRequest{IdempotencyKey: "o1:refund", OrderID: "o1", PaymentID: a.PaymentID, Amount: a.Amount})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := svc.Refund(ctx, services.RefundRequest{IdempotencyKey: "o1:refund", OrderID: "o1", PaymentID: a.PaymentID, Amount: a.Amount})
		if err != nil || r1 != r2 || s.Stats().Refunds != 1 {
			t.Fatalf("refunds %+v %+v %v, stats %+v: want one refund", r1, r2, err, s.Stats())
		}
	})
}

func TestDeclineIsFinalAndRemembered(t *testing.T) {
	t.Parallel()
	adapters(t, sim.Config{PaymentDeclineRate: 1}, func(t *testing.T, svc both, _ *sim.Simulator) {
		for range 2 {
			_, err := svc.Charge(context.Background(), charge("o2", 1))
			if reason, ok := services.IsRejected(err); !ok || reason != "card declined" {
				t.Fatalf("Charge = %v, want a rejection \"card declined\"", err)
			}
		}
	})
}

func TestFailFirstIsTransient(t *testing.T) {
	t.Parallel()
	adapters(t, sim.Config{PaymentFailFirst: 2, InventoryFailFirst: 1}, func(t *testing.T, svc both, _ *sim.Simulator) {
		ctx := context.Background()
		for i := range 2 {
			_, err := svc.Charge(ctx, charge("o3", 1))
			if _, rejected := services.IsRejected(err); err == nil || rejected {
				t.Fatalf("charge %d = %v, want a transient error", i+1, err)
			}
		}
		if _, err := svc.Charge(ctx, charge("o3", 1)); err != nil {
			t.Fatalf("third charge: %v", err)
		}
		if _, err := svc.Reserve(ctx, reserve("o3", 1)); err == nil {
			t.Fatal("first reserve succeeded, want transient error")
		}
		if _, err := svc.Reserve(ctx, reserve("o3", 1)); err != nil {
			t.Fatalf("second reserve: %v", err)
		}
	})
}

func TestStock(t *testing.T) {
	t.Parallel()
	adapters(t, sim.Config{InventoryStock: 5}, func(t *testing.T, svc both, s *sim.Simulator) {
		ctx := context.Background()
		if _, err := svc.Reserve(ctx, reserve("a", 3)); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Reserve(ctx, reserve("a", 3)); err != nil { // the same key: no second reservation
			t.Fatal(err)
		}
		_, err := svc.Reserve(ctx, reserve("b", 3))
		if _, ok := services.IsRejected(err); !ok {
			t.Fatalf("reserving 3 of 2 left = %v, want out of stock", err)
		}
		if left := s.Stock("widget"); left != 2 {
			t.Fatalf("stock left %d, want 2", left)
		}
	})
}

func TestInvalidConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []sim.Config{{PaymentDeclineRate: 1.5}, {PaymentErrorRate: -0.1}, {InventoryStock: -1}, {Latency: -time.Second}} {
		if _, err := sim.New(c); err == nil {
			t.Errorf("sim.New(%+v) accepted a knob out of range", c)
		}
	}
}

func TestClientTimeoutIsTransient(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c, err := servicehttp.New(srv.URL, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Charge(context.Background(), charge("o4", 1))
	if _, rejected := services.IsRejected(err); err == nil || rejected {
		t.Fatalf("Charge against a hung server = %v, want a transient error", err)
	}
	var rej *services.RejectedError
	if errors.As(err, &rej) {
		t.Fatal("timeout classified as rejection")
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "ftp://x", "localhost:80", "http://"} {
		if _, err := servicehttp.New(u, 0); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
