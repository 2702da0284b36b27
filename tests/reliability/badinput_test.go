package reliability

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
)

// appendOrder stores an order with the given events directly in the log and
// returns its ID.
func appendOrder(t *testing.T, s *stack, events ...order.Event) string {
	t.Helper()
	ids := domain.NewULIDSource(nil)
	now := time.Now().UTC()
	id := ids(now)
	var envs []eventstore.Event
	for _, e := range events {
		env, err := s.codec.Encode(e, ids(now), now, eventstore.Metadata{CorrelationID: id})
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	if _, err := s.store.Append(context.Background(), id, 0, envs...); err != nil {
		t.Fatal(err)
	}
	return id
}

// Every class of rejected request leaves the change feed where it was: bad
// input gets a clear error and appends nothing.
func TestRejectedRequestsAppendNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t, t.TempDir(), stackConfig{})
	pending := place(t, s.api, "pending")
	placed := order.Placed{CustomerName: "ada", ProductName: "widget", Quantity: 1}
	failed := appendOrder(t, s, placed, order.PaymentFailed{Reason: "card declined"},
		order.Failed{Reason: "card declined", Step: "charge", Attempts: 1})
	completed := appendOrder(t, s, placed, order.PaymentSucceeded{PaymentID: "pay-1", Amount: 1000},
		order.InventoryReserved{ReservationID: "res-1"}, order.Completed{})
	paid := appendOrder(t, s, placed, order.PaymentSucceeded{PaymentID: "pay-2", Amount: 1000})
	if _, err := s.api.Place(context.Background(), placeRequest("keyed", 2), api.WithIdempotencyKey("key-1")); err != nil {
		t.Fatalf("keyed place: %v", err)
	}
	unknown := domain.NewULIDSource(nil)(time.Now())
	json := map[string]string{"Content-Type": "application/json"}
	huge := `{"customer_name":"` + strings.Repeat("x", 70<<10) + `","product_name":"p","quantity":1}`

	// The requests are sent by hand: most are what api.Client never sends.
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		header map[string]string
		want   int
	}{
		{"malformed JSON", "POST", "/orders", `{"customer_name": "a",`, json, 400},
		{"not an object", "POST", "/orders", `["a"]`, json, 400},
		{"trailing data", "POST", "/orders", `{"customer_name":"a","product_name":"b","quantity":1} {}`, json, 400},
		{"wrong type: quantity string", "POST", "/orders", `{"customer_name":"a","product_name":"b","quantity":"1"}`, json, 400},
		{"wrong type: name number", "POST", "/orders", `{"customer_name":7,"product_name":"b","quantity":1}`, json, 400},
		{"wrong type: fractional quantity", "POST", "/orders", `{"customer_name":"a","product_name":"b","quantity":1.5}`, json, 400},
		{"unknown field", "POST", "/orders", `{"customer_name":"a","product_name":"b","quantity":1,"price":1}`, json, 400},
		{"empty body", "POST", "/orders", ``, json, 400},
		{"413 body too large", "POST", "/orders", huge, json, 413},
		{"415 text/plain", "POST", "/orders", `{"customer_name":"a","product_name":"b","quantity":1}`, map[string]string{"Content-Type": "text/plain"}, 415},
		{"415 no content type", "POST", "/orders", `{"customer_name":"a","product_name":"b","quantity":1}`, map[string]string{"Content-Type": ""}, 415},
		{"422 quantity zero", "POST", "/orders", `{"customer_name":"a","product_name":"b","quantity":0}`, json, 422},
		{"422 quantity too large", "POST", "/orders", `{"customer_name":"a","product_name":"b","quantity":10001}`, json, 422},
		{"422 blank name", "POST", "/orders", `{"customer_name":"   ","product_name":"b","quantity":1}`, json, 422},
		{"422 missing fields", "POST", "/orders", `{}`, json, 422},
		{"422 control characters", "POST", "/orders", `{"customer_name":"a\u0007","product_name":"b","quantity":1}`, json, 422},
		{"422 name too long", "POST", "/orders", `{"customer_name":"` + strings.Repeat("n", 201) + `","product_name":"b","quantity":1}`, json, 422},
		{"bad Idempotency-Key", "POST", "/orders", `{"customer_name":"a","product_name":"b","quantity":1}`, map[string]string{"Idempotency-Key": "has spaces and \u00e9"}, 400},
		{"Idempotency-Key reused with another body", "POST", "/orders", `{"customer_name":"keyed","product_name":"widget","quantity":3}`, map[string]string{"Idempotency-Key": "key-1"}, 422},
		{"cancel: bad ID", "POST", "/orders/not-an-id/cancel", ``, nil, 400},
		{"cancel: ID too long", "POST", "/orders/" + pending + "0/cancel", ``, nil, 400},
		{"cancel: unknown order", "POST", "/orders/" + unknown + "/cancel", ``, nil, 404},
		{"cancel: stale If-Match", "POST", "/orders/" + pending + "/cancel", ``, map[string]string{"If-Match": `"5"`}, 412},
		{"cancel: weak If-Match", "POST", "/orders/" + pending + "/cancel", ``, map[string]string{"If-Match": `W/"1"`}, 412},
		{"cancel: malformed If-Match", "POST", "/orders/" + pending + "/cancel", ``, map[string]string{"If-Match": `"one"`}, 400},
		{"cancel: malformed body", "POST", "/orders/" + pending + "/cancel", `{"reason":`, json, 400},
		{"cancel: unknown field", "POST", "/orders/" + pending + "/cancel", `{"why":"x"}`, json, 400},
		{"cancel: 415", "POST", "/orders/" + pending + "/cancel", `{"reason":"x"}`, map[string]string{"Content-Type": "text/plain"}, 415},
		{"cancel: reason too long", "POST", "/orders/" + pending + "/cancel", `{"reason":"` + strings.Repeat("r", 501) + `"}`, json, 422},
		{"cancel: failed order", "POST", "/orders/" + failed + "/cancel", ``, nil, 409},
		{"cancel: completed order", "POST", "/orders/" + completed + "/cancel", ``, nil, 409},
		{"cancel: paid order", "POST", "/orders/" + paid + "/cancel", ``, nil, 409},
		{"cancel: terminal order with its ETag", "POST", "/orders/" + completed + "/cancel", ``, map[string]string{"If-Match": `"4"`}, 409},
		{"GET on a command path", "PUT", "/orders", `{}`, json, 405},
		{"unknown path", "POST", "/orders/" + pending + "/refund", ``, nil, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := s.head(t)
			var body []byte
			if c.body != "" || c.header["Content-Type"] != "" {
				body = []byte(c.body)
			}
			r := rawDo(t, c.method, s.URL+c.path, body, c.header)
			if r.status != c.want {
				t.Errorf("%s %s: %s, want %d", c.method, c.path, truncate(r.String(), 300), c.want)
			}
			if !r.isProblem() {
				t.Errorf("answer is not problem+json: %s %s", r.header.Get("Content-Type"), truncate(string(r.body), 200))
			}
			if after := s.head(t); after != before {
				t.Errorf("the change feed moved from %d to %d", before, after)
			}
		})
	}
	// Nothing reached the log but the orders set up above.
	rep := checkLog(t, s.store, s.codec)
	if len(rep.streams) != 5 {
		t.Errorf("the log holds %d orders, want the 5 set up", len(rep.streams))
	}
	for _, id := range []string{pending, paid} {
		if n := len(rep.streams[id]); n != map[string]int{pending: 1, paid: 2}[id] {
			t.Errorf("order %s has %d events after rejected commands", id, n)
		}
	}
}
