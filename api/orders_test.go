package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/projections"
)

func TestPlaceOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, path := range []string{"/orders/", "/orders"} {
		r := h.do("POST", path, seedBody, "X-Request-ID: req-123")
		h.want(r, http.StatusCreated)
		id := r.str("order_id")
		if !domain.ValidULID(id) {
			t.Fatalf("order_id %q is not a ULID", id)
		}
		if got := r.header.Get("Location"); got != "/orders/"+id {
			t.Errorf("Location %q", got)
		}
		if got := r.header.Get("ETag"); got != `"1"` {
			t.Errorf("ETag %q", got)
		}
		if r.header.Get("X-Request-ID") != "req-123" {
			t.Errorf("X-Request-ID not echoed: %q", r.header.Get("X-Request-ID"))
		}
		if r.str("status") != "Pending" || r.str("customer_name") != "Test Customer" || r.str("product_name") != "Test Product" || r.json["quantity"] != 1.0 || r.json["version"] != 1.0 || r.str("created_at") == "" {
			t.Errorf("body %s", r.body)
		}
		envs, _ := h.store.Load(t.Context(), id, 1)
		if len(envs) != 1 || envs[0].Type != order.TypePlaced || envs[0].Metadata.RequestID != "req-123" || envs[0].Metadata.CorrelationID != "req-123" || !domain.ValidULID(envs[0].EventID) {
			t.Errorf("stored %+v", envs)
		}
	}
}

func TestPlaceOrderTrimsNames(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.do("POST", "/orders/", `{"customer_name": "  Ada ", "product_name": "Lamp\t", "quantity": 10000}`)
	h.want(r, http.StatusCreated)
	if r.str("customer_name") != "Ada" || r.str("product_name") != "Lamp" {
		t.Errorf("body %s", r.body)
	}
}

func TestPlaceOrderIdempotencyKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	first := h.do("POST", "/orders/", seedBody, "Idempotency-Key: k-1")
	h.want(first, http.StatusCreated)
	id := first.str("order_id")
	// The order moves on; a repeat still gets the original answer.
	h.appendEvents(id, order.PaymentSucceeded{PaymentID: "p", Amount: 100})
	again := h.do("POST", "/orders", seedBody, "Idempotency-Key: k-1")
	h.want(again, http.StatusCreated)
	if again.str("order_id") != id || again.header.Get("Location") != "/orders/"+id || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("repeat answered %s (headers %v), want order %s", again.body, again.header, id)
	}
	if string(again.body) != string(first.body) || again.header.Get("ETag") != first.header.Get("ETag") {
		t.Errorf("repeat body %s, first %s", again.body, first.body)
	}
	if n := len(h.store.streamIDs()); n != 1 {
		t.Errorf("%d orders exist, want 1", n)
	}
	before := h.store.total()
	other := h.do("POST", "/orders", `{"customer_name": "Someone Else", "product_name": "Test Product", "quantity": 1}`, "Idempotency-Key: k-1")
	h.want(other, http.StatusUnprocessableEntity, "invalid")
	if h.store.total() != before {
		t.Error("a reused key with a different body appended")
	}
	bad := h.do("POST", "/orders", seedBody, "Idempotency-Key: has space")
	h.want(bad, http.StatusBadRequest, "malformed")
	// A different key is a different order.
	h.want(h.do("POST", "/orders", seedBody, "Idempotency-Key: k-2"), http.StatusCreated)
	if n := len(h.store.streamIDs()); n != 2 {
		t.Errorf("%d orders exist, want 2", n)
	}
}

// TestRejectedPlaceAppendsNothing: every rejection, whatever its status,
// leaves the log as it was.
func TestRejectedPlaceAppendsNothing(t *testing.T) {
	t.Parallel()
	big := `{"customer_name": "` + strings.Repeat("x", api.MaxBodyBytes) + `", "product_name": "p", "quantity": 1}`
	cases := []struct {
		name, body string
		headers    []string
		status     int
		field      string
	}{
		{"malformed JSON", `{"customer_name": "a",`, nil, 400, ""},
		{"wrong type", `{"customer_name": "a", "product_name": "b", "quantity": "1"}`, nil, 400, "quantity"},
		{"fractional quantity", `{"customer_name": "a", "product_name": "b", "quantity": 1.5}`, nil, 400, "quantity"},
		{"unknown field", `{"customer_name": "a", "product_name": "b", "quantity": 1, "price": 3}`, nil, 400, "price"},
		{"trailing data", seedBody + `{}`, nil, 400, ""},
		{"not an object", `[1, 2]`, nil, 400, ""},
		{"empty body", ``, []string{"Content-Type: application/json"}, 400, ""},
		{"text body", seedBody, []string{"Content-Type: text/plain"}, 415, ""},
		{"no content type", seedBody, []string{"Content-Type:"}, 415, ""},
		{"too large", big, nil, 413, ""},
		// Content codings other than identity are not decoded, so refused.
		{"gzipped body", gzipped(seedBody), []string{"Content-Encoding: gzip"}, 415, ""},
		{"plain body labelled gzip", seedBody, []string{"Content-Encoding: gzip"}, 415, ""},
		{"plain body labelled br", seedBody, []string{"Content-Encoding: br"}, 415, ""},
		{"identity then gzip", seedBody, []string{"Content-Encoding: identity, gzip"}, 415, ""},
		{"zero quantity", `{"customer_name": "a", "product_name": "b", "quantity": 0}`, nil, 422, "quantity"},
		{"quantity too big", `{"customer_name": "a", "product_name": "b", "quantity": 10001}`, nil, 422, "quantity"},
		{"blank name", `{"customer_name": "   ", "product_name": "b", "quantity": 1}`, nil, 422, "customer_name"},
		{"missing fields", `{}`, nil, 422, "customer_name"},
		{"name too long", `{"customer_name": "` + strings.Repeat("é", 201) + `", "product_name": "b", "quantity": 1}`, nil, 422, "customer_name"},
		{"control character", `{"customer_name": "a\u0007", "product_name": "b", "quantity": 1}`, nil, 422, "customer_name"},
		{"invalid UTF-8", "{\"customer_name\": \"\xff\xfe\", \"product_name\": \"b\", \"quantity\": 1}", nil, 400, ""},
		// A lone UTF-16 surrogate escape is no character: encoding/json
		// would store it as U+FFFD.
		{"lone high surrogate", `{"customer_name": "a\ud800", "product_name": "b", "quantity": 1}`, nil, 400, ""},
		{"lone low surrogate", `{"customer_name": "a", "product_name": "\uDC00b", "quantity": 1}`, nil, 400, ""},
		{"surrogates reversed", `{"customer_name": "\udc00\ud800", "product_name": "b", "quantity": 1}`, nil, 400, ""},
		{"high surrogate then a character", `{"customer_name": "\ud800\u0041", "product_name": "b", "quantity": 1}`, nil, 400, ""},
		{"surrogate in a key", `{"customer_name\ud800": "a", "product_name": "b", "quantity": 1}`, nil, 400, ""},
		// Field names are exact: encoding/json alone matches them
		// case-insensitively and lets the last of two equal keys win.
		{"upper-case names", `{"CUSTOMER_NAME": "a", "PRODUCT_NAME": "b", "QUANTITY": 7}`, nil, 400, "CUSTOMER_NAME"},
		{"one name case-folded", `{"customer_name": "a", "product_name": "b", "Quantity": 7}`, nil, 400, "Quantity"},
		{"duplicate key", `{"customer_name": "a", "product_name": "b", "quantity": 1, "quantity": 7}`, nil, 400, "quantity"},
		{"duplicate key differing in case", `{"customer_name": "a", "Customer_Name": "b", "product_name": "b", "quantity": 1}`, nil, 400, "Customer_Name"},
	}
	h := newHarness(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := *h
			h.t = t
			r := h.do("POST", "/orders/", c.body, c.headers...)
			h.want(r, c.status)
			if c.status == http.StatusUnsupportedMediaType && r.header.Get("Accept-Encoding") != "identity" {
				t.Errorf("415 with Accept-Encoding %q, want identity", r.header.Get("Accept-Encoding"))
			}
			if c.field != "" {
				errs, _ := r.json["errors"].([]any)
				found := false
				for _, e := range errs {
					if e.(map[string]any)["field"] == c.field {
						found = true
					}
				}
				if !found {
					t.Errorf("no error for field %q in %s", c.field, r.body)
				}
			}
			if n := h.store.total(); n != 0 {
				t.Errorf("store holds %d events after a rejection", n)
			}
		})
	}
}

func gzipped(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return b.String()
}

// TestContentEncodingIdentity: identity, the only coding taken, is fine
// said aloud; a cancel refuses other codings like a placement.
func TestContentEncodingIdentity(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.do("POST", "/orders", seedBody, "Content-Encoding: Identity")
	h.want(r, http.StatusCreated)
	id := r.str("order_id")
	h.want(h.do("POST", "/orders/"+id+"/cancel", gzipped(`{"reason": "x"}`), "Content-Encoding: gzip"), http.StatusUnsupportedMediaType, "unsupported_media_type")
	h.want(h.do("POST", "/orders/"+id+"/cancel", `{"reason": "x"}`, "Content-Encoding: deflate"), http.StatusUnsupportedMediaType, "unsupported_media_type")
	if n := h.store.total(); n != 1 {
		t.Errorf("store holds %d events, want 1", n)
	}
	h.want(h.do("POST", "/orders/"+id+"/cancel", `{"reason": "x"}`, "Content-Encoding: identity"), http.StatusOK)
}

// TestPlaceOrderUnicodeEscapes: escapes that spell characters are taken,
// a surrogate pair included; an escaped backslash is not an escape.
func TestPlaceOrderUnicodeEscapes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.do("POST", "/orders", `{"customer_name": "Zo\u00eb \ud83d\ude00", "product_name": "\\ud800", "quantity": 1}`)
	h.want(r, http.StatusCreated)
	if r.str("customer_name") != "Zoë 😀" || r.str("product_name") != `\ud800` {
		t.Errorf("body %s", r.body)
	}
	h.want(h.do("POST", "/orders/"+r.str("order_id")+"/cancel", `{"reason": "\udfff"}`), http.StatusBadRequest, "malformed")
	if n := h.store.total(); n != 1 {
		t.Errorf("store holds %d events, want 1", n)
	}
}

func TestGetOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.place()

	// Not projected yet: the log answers rather than a false 404.
	r := h.do("GET", "/orders/"+id+"/", "")
	h.want(r, http.StatusOK)
	if r.str("order_id") != id || r.header.Get("ETag") != `"1"` {
		t.Fatalf("got %s", r.body)
	}

	h.project(id)
	h.appendEvents(id, order.PaymentSucceeded{PaymentID: "pay-1", Amount: 1999}, order.InventoryReserved{ReservationID: "res-1"}, order.Completed{})
	// The read model lags; consistent=true reads the log.
	r = h.do("GET", "/orders/"+id, "")
	h.want(r, http.StatusOK)
	if r.str("status") != "Pending" {
		t.Errorf("read model answer %s", r.body)
	}
	r = h.do("GET", "/orders/"+id+"?consistent=true", "")
	h.want(r, http.StatusOK)
	if r.str("status") != "Completed" || r.header.Get("ETag") != `"4"` || r.json["amount"] != 1999.0 || r.str("payment_id") != "pay-1" || r.str("reservation_id") != "res-1" {
		t.Errorf("consistent answer %s etag %s", r.body, r.header.Get("ETag"))
	}
	// Lowercase IDs are the same ULID.
	h.want(h.do("GET", "/orders/"+strings.ToLower(id)+"?consistent=1", ""), http.StatusOK)

	// Temporal reads.
	r = h.do("GET", "/orders/"+id+"?version=2", "")
	h.want(r, http.StatusOK)
	if r.json["version"] != 2.0 || r.str("status") != "Pending" || r.str("payment_id") != "pay-1" || r.str("reservation_id") != "" {
		t.Errorf("version=2 answer %s", r.body)
	}
	envs, _ := h.store.Load(t.Context(), id, 1)
	asOf := envs[2].OccurredAt.Format("2006-01-02T15:04:05.999999999Z07:00")
	r = h.do("GET", "/orders/"+id+"?as_of="+asOf, "")
	h.want(r, http.StatusOK)
	if r.json["version"] != 3.0 {
		t.Errorf("as_of %s answered %s", asOf, r.body)
	}
	h.want(h.do("GET", "/orders/"+id+"?version=5", ""), http.StatusNotFound, "not_found")
	h.want(h.do("GET", "/orders/"+id+"?as_of=2000-01-01T00:00:00Z", ""), http.StatusNotFound, "not_found")
	// The zero time is a time like any other: long before the order.
	h.want(h.do("GET", "/orders/"+id+"?as_of=0001-01-01T00:00:00Z", ""), http.StatusNotFound, "not_found")
	h.want(h.do("GET", "/orders/"+id+"?as_of=0001-01-01T00:00:00Z&consistent=false", ""), http.StatusNotFound, "not_found")

	for _, q := range []string{"version=0", "version=x", "as_of=yesterday", "consistent=maybe", "version=1&as_of=2026-01-01T00:00:00Z",
		// as_of and version together, whatever the values; empty values are not absent ones.
		"version=1&as_of=0001-01-01T00:00:00Z", "as_of=0001-01-01T00:00:00Z&version=4", "as_of=", "version=", "as_of=&version=2"} {
		h.want(h.do("GET", "/orders/"+id+"?"+q, ""), http.StatusBadRequest, "malformed")
	}
	h.want(h.do("GET", "/orders/not-a-ulid/", ""), http.StatusBadRequest, "malformed")
	h.want(h.do("GET", "/orders/01KAW5Y8Z9ABCDEFGHJKMNPQRS/", ""), http.StatusNotFound, "not_found")
	h.want(h.do("GET", "/orders/01KAW5Y8Z9ABCDEFGHJKMNPQRS/?consistent=true", ""), http.StatusNotFound, "not_found")
}

func TestOrderEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.place()
	h.appendEvents(id, order.PaymentFailed{Reason: "card declined"}, order.Failed{Reason: "card declined", Step: "payment", Attempts: 1})
	r := h.do("GET", "/orders/"+id+"/events/", "")
	h.want(r, http.StatusOK)
	var body struct {
		OrderID string `json:"order_id"`
		Events  []struct {
			Version  int64
			Type     string
			Data     map[string]any
			Metadata map[string]any
		}
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.OrderID != id || len(body.Events) != 3 {
		t.Fatalf("got %s", r.body)
	}
	for i, want := range []string{order.TypePlaced, order.TypePaymentFailed, order.TypeFailed} {
		if body.Events[i].Version != int64(i+1) || body.Events[i].Type != want {
			t.Errorf("event %d: %+v, want %s", i, body.Events[i], want)
		}
	}
	if body.Events[0].Data["customer_name"] != "Test Customer" || body.Events[2].Data["attempts"] != 1.0 || body.Events[0].Metadata["request_id"] == nil {
		t.Errorf("got %s", r.body)
	}
	h.want(h.do("GET", "/orders/01KAW5Y8Z9ABCDEFGHJKMNPQRS/events", ""), http.StatusNotFound)
	h.want(h.do("GET", "/orders/nope/events", ""), http.StatusBadRequest)
}

// TestOrderEventsUpcasts: an event stored in an old schema is shown in
// today's shape.
func TestOrderEventsUpcasts(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.place()
	old := eventstore.Event{EventID: domain.NewULIDSource(nil)(h.clock.now()), Type: order.TypePaymentSucceeded, SchemaVersion: 1,
		OccurredAt: h.clock.now(), Data: json.RawMessage(`{"payment_id":"p-1","amount":"12.34"}`)}
	if _, err := h.store.Append(t.Context(), id, 1, old); err != nil {
		t.Fatal(err)
	}
	r := h.do("GET", "/orders/"+id+"/events", "")
	h.want(r, http.StatusOK)
	if !strings.Contains(string(r.body), `"amount":1234`) {
		t.Errorf("not upcast: %s", r.body)
	}
}

func TestListOrders(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var ids []string
	for range 5 {
		id := h.place()
		ids = append(ids, id)
		h.project(id)
	}
	h.want(h.do("POST", "/orders/"+ids[0]+"/cancel", ""), http.StatusOK)
	h.project(ids[0])

	r := h.do("GET", "/orders/?limit=2", "")
	h.want(r, http.StatusOK)
	items := r.json["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["order_id"] != ids[4] || r.str("next_cursor") == "" {
		t.Fatalf("page 1: %s", r.body)
	}
	var all []string
	cursor := ""
	for page := 0; page < 5; page++ {
		path := "/orders?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := h.do("GET", path, "")
		h.want(r, http.StatusOK)
		for _, it := range r.json["items"].([]any) {
			all = append(all, it.(map[string]any)["order_id"].(string))
		}
		if r.json["next_cursor"] == nil {
			break
		}
		cursor = r.str("next_cursor")
	}
	if fmt.Sprint(all) != fmt.Sprint([]string{ids[4], ids[3], ids[2], ids[1], ids[0]}) {
		t.Errorf("paged %v", all)
	}
	r = h.do("GET", "/orders?status=Cancelled", "")
	h.want(r, http.StatusOK)
	if items := r.json["items"].([]any); len(items) != 1 || items[0].(map[string]any)["order_id"] != ids[0] {
		t.Errorf("status filter: %s", r.body)
	}
	r = h.do("GET", "/orders?customer=Nobody", "")
	h.want(r, http.StatusOK)
	if string(r.body) != "{\"items\":[],\"next_cursor\":null}\n" {
		t.Errorf("empty listing: %s", r.body)
	}
	for _, q := range []string{"status=Shipped", "limit=0", "limit=101", "limit=x", "cursor=garbage"} {
		h.want(h.do("GET", "/orders?"+q, ""), http.StatusBadRequest, "malformed")
	}
}

func TestCancelOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	id := h.place()
	before := h.store.total()
	r := h.do("POST", "/orders/"+id+"/cancel/", `{"reason": "changed my mind"}`, `If-Match: "2"`)
	h.want(r, http.StatusPreconditionFailed, "precondition_failed")
	if h.store.total() != before {
		t.Error("a stale If-Match appended")
	}
	h.want(h.do("POST", "/orders/"+id+"/cancel", "", "If-Match: soon"), http.StatusBadRequest, "malformed")
	h.want(h.do("POST", "/orders/"+id+"/cancel", `{"reason": 3}`), http.StatusBadRequest, "malformed")
	h.want(h.do("POST", "/orders/"+id+"/cancel", `{"REASON": "x"}`), http.StatusBadRequest, "malformed")
	h.want(h.do("POST", "/orders/"+id+"/cancel", `{"reason": "x", "reason": "y"}`), http.StatusBadRequest, "malformed")
	h.want(h.do("POST", "/orders/"+id+"/cancel", `{"reason": "x"}`, "Content-Type: text/plain"), http.StatusUnsupportedMediaType)
	h.want(h.do("POST", "/orders/"+id+"/cancel", `{"reason": "`+strings.Repeat("x", 501)+`"}`), http.StatusUnprocessableEntity, "invalid")
	// Control characters are refused as in names.
	for _, reason := range []string{`a\u0000b`, `\u001b[2J`, `over\rwritten`, `ding\u0007`, `two\nlines`} {
		r := h.do("POST", "/orders/"+id+"/cancel", `{"reason": "`+reason+`"}`)
		h.want(r, http.StatusUnprocessableEntity, "invalid")
		if !strings.Contains(string(r.body), `"field":"reason"`) {
			t.Errorf("reason %s: %s", reason, r.body)
		}
	}
	if h.store.total() != before {
		t.Error("a rejected cancel appended")
	}

	r = h.do("POST", "/orders/"+id+"/cancel/", `{"reason": "changed my mind"}`, `If-Match: "1"`, "X-Request-ID: cancel-1")
	h.want(r, http.StatusOK)
	if r.str("status") != "Cancelled" || r.header.Get("ETag") != `"2"` {
		t.Errorf("cancel answered %s", r.body)
	}
	envs, _ := h.store.Load(t.Context(), id, 1)
	if len(envs) != 2 || envs[1].Type != order.TypeCancelled || envs[1].Metadata.RequestID != "cancel-1" || envs[1].Metadata.CorrelationID != envs[0].Metadata.CorrelationID {
		t.Errorf("stored %+v", envs)
	}
	// Again: nothing changes, nothing is appended.
	h.want(h.do("POST", "/orders/"+id+"/cancel", ""), http.StatusOK)
	if got := h.store.total(); got != before+1 {
		t.Errorf("store holds %d events, want %d", got, before+1)
	}

	// A paid order can no longer be cancelled; a completed one neither.
	paid := h.place()
	h.appendEvents(paid, order.PaymentSucceeded{PaymentID: "p", Amount: 1})
	h.want(h.do("POST", "/orders/"+paid+"/cancel", "", "If-Match: *"), http.StatusConflict, "conflict")
	h.appendEvents(paid, order.InventoryReserved{ReservationID: "r"}, order.Completed{})
	h.want(h.do("POST", "/orders/"+paid+"/cancel", ""), http.StatusConflict, "conflict")

	h.want(h.do("POST", "/orders/01KAW5Y8Z9ABCDEFGHJKMNPQRS/cancel", ""), http.StatusNotFound, "not_found")
	h.want(h.do("POST", "/orders/bad/cancel", ""), http.StatusBadRequest, "malformed")
}

// TestCancelIfMatchTags: If-Match follows RFC 9110 13.1.1: a list of
// entity tags compared strongly, so a weak tag never matches; a 412 names
// the current version and every tag asked for, and nothing internal.
func TestCancelIfMatchTags(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.place()
	for _, c := range []struct {
		ifMatch string
		want    []string // in the 412's detail
	}{
		{`W/"1"`, []string{"version 1", `W/"1"`, "weak"}},
		{`"2", "3"`, []string{"version 1", `"2"`, `"3"`}},
		{`W/"1", "2"`, []string{"version 1", `W/"1"`, `"2"`}},
		{`"2",W/"3" ,4`, []string{"version 1", `"2"`, `W/"3"`, "4"}},
	} {
		r := h.do("POST", "/orders/"+id+"/cancel", "", "If-Match: "+c.ifMatch)
		h.want(r, http.StatusPreconditionFailed, "precondition_failed")
		detail := r.str("detail")
		for _, w := range c.want {
			if !strings.Contains(detail, w) {
				t.Errorf("If-Match %s: detail %q does not name %s", c.ifMatch, detail, w)
			}
		}
		if strings.Contains(detail, "-1") {
			t.Errorf("If-Match %s: detail %q shows an internal value", c.ifMatch, detail)
		}
	}
	// Syntax errors, and tags that cannot be this server's (its ETags
	// are versions), are malformed.
	for _, bad := range []string{`"1`, `*, "1"`, `W/1`, `w/"1"`, `"1" "2"`, `,`, `"1"x`, `"one"`, `"0"`, `"01"`, `""`, `"-1"`, `"1,2"`, `W/"x"`, `0`} {
		h.want(h.do("POST", "/orders/"+id+"/cancel", "", "If-Match: "+bad), http.StatusBadRequest, "malformed")
	}
	if n := h.store.total(); n != 1 {
		t.Fatalf("store holds %d events after refused cancels, want 1", n)
	}
	// A list matches when any strong tag does; empty list elements are
	// ignored (RFC 9110 5.6.1).
	r := h.do("POST", "/orders/"+id+"/cancel", "", `If-Match: W/"1", , "7", "1"`)
	h.want(r, http.StatusOK)
	if r.str("status") != "Cancelled" {
		t.Errorf("cancel answered %s", r.body)
	}
}

// TestCancelRace: the processor appends between the cancel's load and its
// append. Without If-Match the cancel decides again on fresh state; with it
// the client is told its version is stale.
func TestCancelRace(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	payRace := func(id string) func(string) {
		return func(string) { h.appendEvents(id, order.PaymentSucceeded{PaymentID: "p", Amount: 1}) }
	}

	id := h.place()
	h.store.beforeAppend = payRace(id)
	h.want(h.do("POST", "/orders/"+id+"/cancel", ""), http.StatusConflict, "conflict")

	id = h.place()
	h.store.beforeAppend = payRace(id)
	h.want(h.do("POST", "/orders/"+id+"/cancel", "", `If-Match: "1"`), http.StatusPreconditionFailed, "precondition_failed")

	// A harmless race (a failed reservation attempt would not stop a cancel,
	// but a failed payment does not either): retried and cancelled.
	id = h.place()
	h.store.beforeAppend = func(string) { h.appendEvents(id, order.PaymentFailed{Reason: "declined"}) }
	r := h.do("POST", "/orders/"+id+"/cancel", "")
	h.want(r, http.StatusOK)
	if r.str("status") != "Cancelled" || r.json["version"] != 3.0 {
		t.Errorf("got %s", r.body)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(d *api.Deps) { d.Token = "s3cret" })
	h.want(h.do("POST", "/orders/", seedBody), http.StatusUnauthorized, "unauthorized")
	h.want(h.do("GET", "/orders/", "", "Authorization: Bearer wrong"), http.StatusUnauthorized)
	h.want(h.do("GET", "/orders/", "", "Authorization: Basic s3cret"), http.StatusUnauthorized)
	h.want(h.do("POST", "/admin/projections/rebuild", "", "Authorization: Bearer s3cre"), http.StatusUnauthorized)
	if h.store.total() != 0 {
		t.Error("an unauthorized request appended")
	}
	r := h.do("POST", "/orders/", seedBody, "Authorization: Bearer s3cret")
	h.want(r, http.StatusCreated)
	h.want(h.do("GET", "/orders/"+r.str("order_id"), "", "Authorization: bearer s3cret"), http.StatusOK)
	h.want(h.do("GET", "/healthz", ""), http.StatusOK)
	h.want(h.do("GET", "/readyz/", ""), http.StatusOK)
	h.want(h.do("GET", "/openapi.json", ""), http.StatusOK)
	if r := h.do("GET", "/orders/", ""); r.header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
}

// TestServerErrorsDoNotLeak: store failures answer 500/503 with a fixed
// detail; the cause goes to the log only.
func TestServerErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.place()
	h.store.mu.Lock()
	h.store.failWith = errors.New("pebble: /var/lib/secret-path/000123.sst: checksum mismatch")
	h.store.mu.Unlock()
	for _, req := range [][2]string{{"POST", "/orders/"}, {"GET", "/orders/" + id + "?consistent=true"}, {"GET", "/orders/" + id + "/events"}, {"POST", "/orders/" + id + "/cancel"}} {
		body := ""
		if req[1] == "/orders/" {
			body = seedBody
		}
		r := h.do(req[0], req[1], body)
		h.want(r, http.StatusInternalServerError, "internal")
		if strings.Contains(string(r.body), "secret") || strings.Contains(string(r.body), "pebble") {
			t.Errorf("%s %s leaked: %s", req[0], req[1], r.body)
		}
		if r.str("request_id") == "" {
			t.Errorf("no request_id in %s", r.body)
		}
	}
	if !strings.Contains(h.logs.String(), "secret-path") {
		t.Error("the cause was not logged")
	}
	h.store.mu.Lock()
	h.store.failWith = fmt.Errorf("eventstore/pebblestore: append: %w", eventstore.ErrClosed)
	h.store.mu.Unlock()
	r := h.do("POST", "/orders/", seedBody)
	h.want(r, http.StatusServiceUnavailable, "unavailable")
	if strings.Contains(string(r.body), "eventstore") || r.header.Get("Retry-After") == "" {
		t.Errorf("503: %s %v", r.body, r.header)
	}
	h.views.mu.Lock()
	h.views.fail = errors.New("views: disk on fire")
	h.views.mu.Unlock()
	r = h.do("GET", "/orders/"+id, "")
	h.want(r, http.StatusInternalServerError)
	if strings.Contains(string(r.body), "fire") {
		t.Errorf("leaked %s", r.body)
	}
}

func TestRoutingProblems(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.want(h.do("GET", "/nowhere", ""), http.StatusNotFound, "not_found")
	r := h.do("DELETE", "/orders/", "")
	h.want(r, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("Allow %q", allow)
	}
	r = h.do("PUT", "/orders/01KAW5Y8Z9ABCDEFGHJKMNPQRS/cancel", "")
	h.want(r, http.StatusMethodNotAllowed)
	if allow := r.header.Get("Allow"); allow != "POST" {
		t.Errorf("Allow %q", allow)
	}
	// HEAD works where GET does.
	h.want(h.do("HEAD", "/healthz", ""), http.StatusOK)
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	checks := []api.Check{{Name: "store", OK: true}, {Name: "projector", OK: true, Detail: "0 events behind"}}
	h := newHarness(t, func(d *api.Deps) {
		d.Ready = func(context.Context) []api.Check {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(checks)
		}
	})
	r := h.do("GET", "/healthz/", "")
	h.want(r, http.StatusOK)
	if r.str("status") != "ok" {
		t.Errorf("healthz %s", r.body)
	}
	r = h.do("GET", "/readyz", "")
	h.want(r, http.StatusOK)
	if r.str("status") != "ready" || len(r.json["checks"].([]any)) != 2 {
		t.Errorf("readyz %s", r.body)
	}
	mu.Lock()
	checks[1] = api.Check{Name: "projector", OK: false, Detail: "50000 events behind"}
	mu.Unlock()
	r = h.do("GET", "/readyz", "")
	h.want(r, http.StatusServiceUnavailable, "unavailable")
	if !strings.Contains(r.str("detail"), "projector") || len(r.json["checks"].([]any)) != 2 {
		t.Errorf("readyz %s", r.body)
	}
	r = h.do("GET", "/openapi.json", "")
	h.want(r, http.StatusOK)
	if r.str("openapi") != "3.1.0" {
		t.Errorf("openapi.json: %.100s", r.body)
	}
}

// panicViews panics on every call.
type panicViews struct{}

func (panicViews) Get(context.Context, string) (projections.View, error) {
	panic("views: boom /secret")
}
func (panicViews) List(context.Context, projections.ListQuery) (projections.Page, error) {
	panic("views: boom /secret")
}

func TestPanicIsA500(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(d *api.Deps) { d.Views = panicViews{} })
	r := h.do("GET", "/orders/", "")
	h.want(r, http.StatusInternalServerError, "internal")
	if strings.Contains(string(r.body), "secret") {
		t.Errorf("leaked %s", r.body)
	}
	if !strings.Contains(h.logs.String(), "boom /secret") {
		t.Error("panic not logged")
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.do("POST", "/orders/", seedBody, "X-Request-ID: log-me")
	h.do("GET", "/orders/", "", "X-Request-ID: "+strings.Repeat("x", 129))
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("%d log lines", len(lines))
	}
	first := lines[0]
	if first["msg"] != "http request" || first["request_id"] != "log-me" || first["status"] != 201.0 || first["method"] != "POST" || first["path"] != "/orders/" {
		t.Errorf("log line %v", first)
	}
	if id, _ := lines[1]["request_id"].(string); !domain.ValidULID(id) {
		t.Errorf("an over-long X-Request-ID was not replaced: %v", lines[1]["request_id"])
	}
}

// fakeRebuild finishes when release is closed.
func fakeRebuild(release <-chan struct{}) projections.RebuildFunc {
	return func(ctx context.Context, progress func(projections.Progress)) error {
		progress(projections.Progress{Done: 10, Total: 40})
		<-release
		progress(projections.Progress{Done: 40, Total: 40})
		return nil
	}
}

func TestRebuildEndpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.want(h.do("POST", "/admin/projections/rebuild", ""), http.StatusServiceUnavailable, "unavailable")
	h.want(h.do("GET", "/admin/projections/rebuild", ""), http.StatusServiceUnavailable, "unavailable")

	release := make(chan struct{})
	rb, err := projections.NewRebuilds(fakeRebuild(release))
	if err != nil {
		t.Fatal(err)
	}
	h = newHarness(t, func(d *api.Deps) { d.Rebuilds = rb })
	r := h.do("POST", "/admin/projections/rebuild/", "")
	h.want(r, http.StatusAccepted)
	if r.json["running"] != true {
		t.Errorf("start answered %s", r.body)
	}
	h.want(h.do("POST", "/admin/projections/rebuild", ""), http.StatusConflict, "conflict")
	close(release)
	if err := rb.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	r = h.do("GET", "/admin/projections/rebuild", "")
	h.want(r, http.StatusOK)
	if r.json["running"] != false || r.json["events_done"] != 40.0 || r.str("finished_at") == "" {
		t.Errorf("status %s", r.body)
	}
}

// TestOrderEventsVerify: ?verify=true answers the history and whether its
// chain holds; an event changed behind the store's back breaks it, and the
// answer names where. The client's VerifyHistory reads the same.
func TestOrderEventsVerify(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.place()
	h.appendEvents(id, order.PaymentFailed{Reason: "card declined"}, order.Failed{Reason: "card declined", Step: "payment", Attempts: 1})
	c, err := api.NewClient(h.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	check := func(holds bool, version int64) {
		t.Helper()
		r := h.do("GET", "/orders/"+id+"/events/?verify=true", "")
		h.want(r, http.StatusOK)
		got, err := c.VerifyHistory(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Chain == nil || got.Chain.Holds != holds || len(got.Events) != 3 {
			t.Fatalf("chain %+v, want holds=%v: %s", got.Chain, holds, r.body)
		}
		if !holds && (got.Chain.Break == nil || got.Chain.Break.Version != version || got.Chain.Break.StreamID != id) {
			t.Fatalf("break %+v, want version %d of %s", got.Chain.Break, version, id)
		}
		if got.Events[1].Hash.IsZero() || got.Events[1].PrevHash != got.Events[0].Hash {
			t.Fatalf("events carry no chain: %s", r.body)
		}
	}
	check(true, 0)
	if plain := h.do("GET", "/orders/"+id+"/events", ""); strings.Contains(string(plain.body), `"chain"`) {
		t.Fatalf("chain without verify: %s", plain.body)
	}
	h.store.mu.Lock()
	h.store.streams[id][1].Data = json.RawMessage(`{"reason":"approved"}`)
	h.store.mu.Unlock()
	check(false, 2)
	h.want(h.do("GET", "/orders/"+id+"/events?verify=yes", ""), http.StatusBadRequest, "malformed")
}
