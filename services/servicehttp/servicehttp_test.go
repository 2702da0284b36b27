package servicehttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/internal/tracing"
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
		srv := httptest.NewServer(servicehttp.NewHandler(s, s))
		t.Cleanup(srv.Close)
		c, err := servicehttp.NewClient(srv.URL, 0)
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
	c, err := servicehttp.NewClient(srv.URL, 50*time.Millisecond)
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
		if _, err := servicehttp.NewClient(u, 0); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

// TestWire pins the protocol's bytes: the JSON keys, the header that
// overrides the body's key, and the status of each kind of answer.
func TestWire(t *testing.T) {
	t.Parallel()
	s, err := sim.New(sim.Config{InventoryStock: 1, PaymentFailFirst: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(servicehttp.NewHandler(s, s))
	t.Cleanup(srv.Close)
	post := func(path, body, key string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
			t.Fatalf("POST %s: undecodable answer: %v", path, err)
		}
		return res.StatusCode, m
	}
	charge := `{"idempotency_key":"o1:payment","order_id":"o1","customer_name":"Ada","product_name":"widget","quantity":2}`
	if code, m := post(servicehttp.PathCharges, charge, ""); code != http.StatusServiceUnavailable || m["error"] == "" {
		t.Errorf("first charge (fail-first) = %d %v, want 503 with an error", code, m)
	}
	code, m := post(servicehttp.PathCharges, charge, "")
	if code != http.StatusOK || m["payment_id"] == "" || m["amount"] != float64(2*sim.DefaultUnitPrice) {
		t.Errorf("charge = %d %v, want 200 {payment_id, amount}", code, m)
	}
	// The header wins over the body's key: another key (failing first, as
	// every new key does here), then another charge.
	if code, _ := post(servicehttp.PathCharges, charge, "o1:other"); code != http.StatusServiceUnavailable {
		t.Errorf("first charge under another header key = %d, want 503", code)
	}
	if code, again := post(servicehttp.PathCharges, charge, "o1:other"); code != http.StatusOK || again["payment_id"] == m["payment_id"] {
		t.Errorf("charge under another header key = %d %v, want a new charge", code, again)
	}
	refund := fmt.Sprintf(`{"idempotency_key":"o1:refund","order_id":"o1","payment_id":%q,"amount":2,"reason":"changed"}`, m["payment_id"])
	if code, m := post(servicehttp.PathRefunds, refund, ""); code != http.StatusOK || m["refund_id"] == "" {
		t.Errorf("refund = %d %v, want 200 {refund_id}", code, m)
	}
	reserve := `{"idempotency_key":"o1:inventory","order_id":"o1","product_name":"widget","quantity":1}`
	if code, m := post(servicehttp.PathReservations, reserve, ""); code != http.StatusOK || m["reservation_id"] == "" {
		t.Errorf("reserve = %d %v, want 200 {reservation_id}", code, m)
	}
	if code, m := post(servicehttp.PathReservations, strings.ReplaceAll(reserve, "o1", "o2"), ""); code != http.StatusConflict || m["reason"] == "" {
		t.Errorf("reserve beyond stock = %d %v, want 409 with a reason", code, m)
	}
	for _, bad := range []string{`{"idempotency_key":`, `{"order_id":"o3","quantity":1}`, `{"idempotency_key":"k","price":1}`} {
		if code, m := post(servicehttp.PathCharges, bad, ""); code != http.StatusBadRequest || m["error"] == "" {
			t.Errorf("charge %s = %d %v, want 400 with an error", bad, code, m)
		}
	}
}

// TestRefusalStatusIsPerRoute: a refusal counts only on the route's own
// refusal status; a 409 from the charges route is not a decline.
func TestRefusalStatusIsPerRoute(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"reason":"no"}`))
	}))
	t.Cleanup(srv.Close)
	c, err := servicehttp.NewClient(srv.URL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Charge(context.Background(), charge("o5", 1)); err == nil {
		t.Fatal("Charge answered 409 succeeded")
	} else if _, rejected := services.IsRejected(err); rejected {
		t.Errorf("Charge answered 409 = rejection %v, want transient", err)
	}
	if _, err := c.Reserve(context.Background(), reserve("o5", 1)); err == nil {
		t.Fatal("Reserve answered 409 succeeded")
	} else if reason, rejected := services.IsRejected(err); !rejected || reason != "no" {
		t.Errorf("Reserve answered 409 = %v, want the rejection \"no\"", err)
	}
}

// A void closes a key that has not charged (a later charge is refused and
// nothing is held) and answers the charge of a key that has; both ends agree
// on it over HTTP as in process.
func TestVoidClosesOrAnswersTheCharge(t *testing.T) {
	t.Parallel()
	adapters(t, sim.Config{}, func(t *testing.T, svc both, s *sim.Simulator) {
		ctx := context.Background()
		void := func(id string) services.Void {
			t.Helper()
			v, err := svc.Void(ctx, services.VoidRequest{IdempotencyKey: services.Key(id, services.StepCharge), OrderID: id, Reason: "cancelled"})
			if err != nil {
				t.Fatalf("Void(%s): %v", id, err)
			}
			return v
		}
		if v := void("v1"); v.Charged {
			t.Fatalf("Void of an uncharged key = %+v, want nothing charged", v)
		}
		if _, err := svc.Charge(ctx, charge("v1", 2)); err == nil {
			t.Fatal("Charge after Void succeeded, want a refusal")
		} else if reason, ok := services.IsRejected(err); !ok || !strings.Contains(reason, "voided") {
			t.Fatalf("Charge after Void = %v, want a refusal saying voided", err)
		}
		if v := void("v1"); v.Charged {
			t.Fatalf("second Void = %+v, want the same answer", v)
		}
		ch, err := svc.Charge(ctx, charge("v2", 2))
		if err != nil {
			t.Fatal(err)
		}
		if v := void("v2"); !v.Charged || v.Charge != ch {
			t.Fatalf("Void of a charged key = %+v, want Charged with %+v", v, ch)
		}
		held := s.Held()
		if held["v1"] != 0 || held["v2"] != ch.Amount {
			t.Fatalf("held %v, want v1 0 and v2 %d", held, ch.Amount)
		}
		if st := s.Stats(); st.Voids != 1 || st.Charges != 1 {
			t.Fatalf("stats %+v, want 1 void and 1 charge", st)
		}
	})
}

// TestClientSendsTraceParent: a call made in a span carries its
// traceparent header to the service.
func TestClientSendsTraceParent(t *testing.T) {
	t.Parallel()
	s, err := sim.New(sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	h := servicehttp.NewHandler(s, s)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, err := servicehttp.NewClient(srv.URL, 0)
	if err != nil {
		t.Fatal(err)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if _, err := c.Reserve(tracing.Continue(context.Background(), tp), services.ReserveRequest{IdempotencyKey: "k", OrderID: "o", ProductName: "p", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h != tp {
		t.Fatalf("traceparent header %q, want %q", h, tp)
	}
}
