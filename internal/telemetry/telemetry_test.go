package telemetry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/telemetry"
	"github.com/orderledger/orderledger/services"
	"github.com/orderledger/orderledger/services/sim"
)

func get(t *testing.T, h http.Handler, path, token string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, rec.Body.String()
}

func TestMiddlewareLabelsByRoutePatternAndStatusClass(t *testing.T) {
	m := telemetry.New()
	r := chi.NewRouter()
	r.Get("/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		if chi.URLParam(r, "id") == "missing" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	h := m.Mount(r, "")
	for _, p := range []string{"/orders/A1", "/orders/B2", "/orders/missing", "/nowhere"} {
		get(t, h, p, "")
	}
	_, body := get(t, h, "/metrics", "")
	for _, want := range []string{
		`ledger_http_requests_total{code="2xx",method="GET",route="/orders/{id}"} 2`,
		`ledger_http_requests_total{code="4xx",method="GET",route="/orders/{id}"} 1`,
		`ledger_http_requests_total{code="4xx",method="GET",route="unmatched"} 1`,
		`ledger_http_request_duration_seconds_count{code="2xx",method="GET",route="/orders/{id}"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	for _, leak := range []string{"A1", "B2", "/nowhere"} {
		if strings.Contains(body, leak) {
			t.Errorf("scrape carries the raw path value %q as a label", leak)
		}
	}
}

func TestMetricsBehindToken(t *testing.T) {
	m := telemetry.New()
	h := m.Mount(http.NotFoundHandler(), "s3cret")
	if rec, _ := get(t, h, "/metrics", ""); rec.Code != http.StatusUnauthorized || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("no token: %d %q, want 401 problem+json", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec, _ := get(t, h, "/metrics", "wrong"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", rec.Code)
	}
	if rec, body := get(t, h, "/metrics", "s3cret"); rec.Code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("token: %d, want 200 with the Go collector", rec.Code)
	}
}

func TestStoreCountsAppendsConflictsAndReplays(t *testing.T) {
	ps, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	m := telemetry.New()
	s := m.Store(ps)
	ctx := context.Background()
	ev := func(typ string) eventstore.Event {
		return eventstore.Event{EventID: typ + "-id", Type: typ, SchemaVersion: 1, Data: []byte(`{}`)}
	}
	if _, err := s.AppendIdempotent(ctx, "k1", "o1", 0, ev("OrderPlaced")); err != nil {
		t.Fatal(err)
	}
	if res, err := s.AppendIdempotent(ctx, "k1", "o1", 0, ev("OrderPlaced")); err != nil || !res.Duplicate {
		t.Fatalf("replay: %+v %v", res, err)
	}
	var conflict *eventstore.ConflictError
	if _, err := s.Append(ctx, "o1", 0, ev("OrderPlaced")); !errors.As(err, &conflict) {
		t.Fatalf("want a conflict, got %v", err)
	}
	if _, err := s.Append(ctx, "o1", 1, ev("PaymentSucceeded"), ev("OrderCompleted")); err != nil {
		t.Fatal(err)
	}
	reg := m.Registry()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ledger_eventstore_conflicts_total Appends refused because the stream's version had moved (optimistic concurrency conflicts).
# TYPE ledger_eventstore_conflicts_total counter
ledger_eventstore_conflicts_total 1
# HELP ledger_eventstore_idempotent_replays_total Appends whose idempotency key had been used: nothing appended, the original result returned.
# TYPE ledger_eventstore_idempotent_replays_total counter
ledger_eventstore_idempotent_replays_total 1
`), "ledger_eventstore_conflicts_total", "ledger_eventstore_idempotent_replays_total"); err != nil {
		t.Error(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ledger_events_appended_total Events appended to the event store by this process, by event type (OrderPlaced counts orders placed, OrderCompleted orders completed).
# TYPE ledger_events_appended_total counter
ledger_events_appended_total{type="OrderCompleted"} 1
ledger_events_appended_total{type="OrderPlaced"} 1
ledger_events_appended_total{type="PaymentSucceeded"} 1
`), "ledger_events_appended_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "ledger_eventstore_append_duration_seconds"); err != nil || n != 3 {
		t.Errorf("append duration series by result: %d %v, want 3 (ok, replay, conflict)", n, err)
	}
}

func TestServicesTimedByResult(t *testing.T) {
	m := telemetry.New()
	declining, err := sim.New(sim.Config{PaymentDeclineRate: 1, InventoryStock: 1})
	if err != nil {
		t.Fatal(err)
	}
	pay, inv := m.Payment(declining), m.Inventory(declining)
	ctx := context.Background()
	if _, err := pay.Charge(ctx, services.ChargeRequest{IdempotencyKey: "o1:payment", OrderID: "o1", CustomerName: "Ada", ProductName: "Lamp", Quantity: 1}); err == nil {
		t.Fatal("want a decline")
	}
	if _, err := inv.Reserve(ctx, services.ReserveRequest{IdempotencyKey: "o1:inventory", OrderID: "o1", ProductName: "Lamp", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, m.Mount(http.NotFoundHandler(), ""), "/metrics", "")
	for _, want := range []string{
		`ledger_service_call_duration_seconds_count{operation="charge",result="rejected",service="payment"} 1`,
		`ledger_service_call_duration_seconds_count{operation="reserve",result="ok",service="inventory"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}
