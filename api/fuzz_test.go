package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
)

// Run longer with:
//
//	go test -run '^$' -fuzz '^FuzzDecodePlaceOrder$' -fuzztime 10m ./api/
//	go test -run '^$' -fuzz '^FuzzPlaceOrder$' -fuzztime 10m ./api/
//
// The seed corpus is in testdata/fuzz/<target>/.

// checkPlace checks that p, the command decoded from an accepted request,
// is a valid order placement: names trimmed, 1..200 printable characters of
// valid UTF-8, quantity 1..10000.
func checkPlace(t *testing.T, p order.Placed) {
	t.Helper()
	for field, s := range map[string]string{"customer_name": p.CustomerName, "product_name": p.ProductName} {
		n := utf8.RuneCountInString(s)
		switch {
		case !utf8.ValidString(s):
			t.Fatalf("accepted %s %q is not valid UTF-8", field, s)
		case n < 1 || n > order.MaxNameLength:
			t.Fatalf("accepted %s %q has %d characters", field, s, n)
		case strings.TrimSpace(s) != s:
			t.Fatalf("accepted %s %q is not trimmed", field, s)
		case strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			t.Fatalf("accepted %s %q has a non-printable character", field, s)
		}
	}
	if p.Quantity < order.MinQuantity || p.Quantity > order.MaxQuantity {
		t.Fatalf("accepted quantity %d", p.Quantity)
	}
}

// FuzzDecodePlaceOrder feeds arbitrary bodies and content types to the
// request decoder of POST /orders and then to the decision it feeds: it
// never panics, every refusal is a client error of a known kind, and input
// it accepts always yields a valid order.Place.
func FuzzDecodePlaceOrder(f *testing.F) {
	for _, seed := range []struct{ body, ct string }{
		{`{"customer_name":"Ada","product_name":"widget","quantity":3}`, "application/json"},
		{`{"customer_name":" Ada ","product_name":"w","quantity":1}`, "application/json; charset=utf-8"},
		{`{"customer_name":"A","product_name":"w","quantity":1}`, "application/problem+json"},
		{`{"customer_name":"A","product_name":"w","quantity":"1"}`, "application/json"},
		{`{"customer_name":"A","product_name":"w","quantity":1,"x":1}`, "application/json"},
		{`{"CUSTOMER_NAME":"A","PRODUCT_NAME":"w","QUANTITY":7}`, "application/json"},
		{`{"customer_name":"A","product_name":"w","quantity":1,"quantity":7}`, "application/json"},
		{`{"customer_name":"A"`, "application/json"},
		{`[]`, "application/json"},
		{`{}`, "application/json"},
		{`{"quantity":1e3}`, "application/json"},
		{`{"customer_name":"\u0000","product_name":"w","quantity":1}`, "application/json"},
		{`{"customer_name":"\ud800","product_name":"w","quantity":1}`, "application/json"},
		{`{"customer_name":"A\udc00","product_name":"w","quantity":1}`, "application/json"},
		{`{"customer_name":"\ud83d\ude00","product_name":"\\ud800","quantity":1}`, "application/json"},
		{`{"customer_name":"\ud800\u","product_name":"w","quantity":1}`, "application/json"},
		{`{"customer_name":"A","product_name":"w","quantity":1} x`, "application/json"},
		{`{"customer_name":"A","product_name":"w","quantity":1}`, "text/plain"},
		{"", ""},
	} {
		f.Add([]byte(seed.body), seed.ct)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/orders", bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, MaxBodyBytes)
		var req PlaceRequest
		err := decodeJSON(r, &req, true)
		if err != nil {
			var de *domain.Error
			if !errors.As(err, &de) {
				t.Fatalf("decode error %v (%T) is not a domain error", err, err)
			}
			if k, ok := kinds[de.Code]; !ok || k.status < 400 || k.status >= 500 {
				t.Fatalf("decode error %v maps to %d, want a 4xx", err, k.status)
			}
			return
		}
		// Accepted input is one JSON object with only the known fields,
		// spelled exactly, each at most once.
		dec := json.NewDecoder(bytes.NewReader(body))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("accepted a body that is not a JSON object: %q: %v", body, err)
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatalf("accepted malformed JSON %q: %v", body, err)
			}
			k, _ := tok.(string)
			if k != "customer_name" && k != "product_name" && k != "quantity" {
				t.Fatalf("accepted unknown field %q", k)
			}
			if seen[k] {
				t.Fatalf("accepted field %q twice", k)
			}
			seen[k] = true
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("accepted malformed JSON %q: %v", body, err)
			}
		}
		events, err := order.Decide(order.Order{}, order.Place{CustomerName: req.CustomerName, ProductName: req.ProductName, Quantity: req.Quantity})
		if err != nil {
			if domain.CodeOf(err) != domain.Invalid {
				t.Fatalf("Decide refused %+v with %v, want an Invalid error", req, err)
			}
			return
		}
		if len(events) != 1 {
			t.Fatalf("Decide returned %d events, want 1", len(events))
		}
		placed, ok := events[0].(order.Placed)
		if !ok {
			t.Fatalf("Decide returned %T, want order.Placed", events[0])
		}
		checkPlace(t, placed)
	})
}

// fuzzStore is an event store that records appends, for FuzzPlaceOrder.
type fuzzStore struct {
	mu       sync.Mutex
	appended []eventstore.Event
	keys     map[string]eventstore.Result
}

func (s *fuzzStore) Append(ctx context.Context, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	return s.AppendIdempotent(ctx, "", streamID, expected, events...)
}

func (s *fuzzStore) AppendIdempotent(_ context.Context, key, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.keys[key]; ok && key != "" {
		r.Duplicate = true
		return r, nil
	}
	if expected != 0 {
		return eventstore.Result{}, &eventstore.ConflictError{StreamID: streamID, Expected: expected}
	}
	for i := range events {
		events[i].StreamID, events[i].Version = streamID, int64(i+1)
	}
	s.appended = append(s.appended, events...)
	res := eventstore.Result{StreamID: streamID, Version: int64(len(events))}
	if key != "" {
		s.keys[key] = res
	}
	return res, nil
}

func (s *fuzzStore) Load(_ context.Context, streamID string, from int64) ([]eventstore.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []eventstore.Event
	for _, e := range s.appended {
		if e.StreamID == streamID && e.Version >= from {
			out = append(out, e)
		}
	}
	return out, nil
}

// noViews is a read model with no orders.
type noViews struct{}

func (noViews) Get(context.Context, string) (projections.View, error) {
	return projections.View{}, order.ErrNotFound
}

func (noViews) List(context.Context, projections.ListQuery) (projections.Page, error) {
	return projections.Page{}, nil
}

// FuzzPlaceOrder sends arbitrary bodies, content types and idempotency keys
// through the whole router: it never answers 5xx, a refusal appends
// nothing, and a 201 appends exactly one OrderPlaced holding a valid order
// that the response shows.
func FuzzPlaceOrder(f *testing.F) {
	f.Add([]byte(`{"customer_name":"Ada","product_name":"widget","quantity":3}`), "application/json", "")
	f.Add([]byte(`{"customer_name":"Ada","product_name":"widget","quantity":3}`), "application/json", "key-1")
	f.Add([]byte(`{"customer_name":"Ada","product_name":"widget","quantity":0}`), "application/json", "")
	f.Add([]byte(`{"customer_name":"Ada","product_name":"widget","quantity":3}`), "text/plain", "")
	f.Add([]byte(`{"customer_name":"Ada","product_name":"widget","quantity":3}`), "application/json", "bad key")
	f.Add([]byte(`{"customer_name":"\ud800","product_name":"w","quantity":1}`), "application/json", "")
	f.Add([]byte(`{"CUSTOMER_NAME":"Ada","PRODUCT_NAME":"widget","QUANTITY":7}`), "application/json", "")
	f.Add([]byte(`{"customer_name":"Ada","product_name":"widget","quantity":3,"customer_name":"Eve"}`), "application/json", "")
	codec := orders.NewCodec()
	f.Fuzz(func(t *testing.T, body []byte, contentType, key string) {
		store := &fuzzStore{keys: map[string]eventstore.Result{}}
		h := NewRouter(Deps{Store: store, Views: noViews{}, Codec: codec})
		r := httptest.NewRequest(http.MethodPost, "/orders", bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if key != "" {
			r.Header["Idempotency-Key"] = []string{key}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusCreated:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
			if len(store.appended) != 0 {
				t.Fatalf("answered %d but appended %d events", w.Code, len(store.appended))
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("answered %d with Content-Type %q", w.Code, ct)
			}
			return
		default:
			t.Fatalf("POST /orders answered %d: %s", w.Code, w.Body.String())
		}
		if len(store.appended) != 1 || store.appended[0].Type != order.TypePlaced {
			t.Fatalf("a 201 appended %d events, want one OrderPlaced", len(store.appended))
		}
		e, err := codec.Decode(store.appended[0])
		if err != nil {
			t.Fatalf("the stored event does not decode: %v", err)
		}
		placed := e.(order.Placed)
		checkPlace(t, placed)
		var v projections.View
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("201 body: %v", err)
		}
		want := projections.View{OrderID: store.appended[0].StreamID, CustomerName: placed.CustomerName,
			ProductName: placed.ProductName, Quantity: placed.Quantity, Status: order.StatusPending, Version: 1}
		v.CreatedAt, v.UpdatedAt = want.CreatedAt, want.UpdatedAt
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("201 shows %+v, the log holds %+v", v, want)
		}
	})
}

// FuzzCancelRequest feeds arbitrary If-Match and Content-Encoding headers
// and bodies to the parsing of POST /orders/{id}/cancel: it never panics,
// every refusal is a client error of a known kind, a parsed If-Match
// matches a version only through a strong tag naming it, and a refused
// match never shows an internal value.
func FuzzCancelRequest(f *testing.F) {
	for _, seed := range []struct{ ifMatch, encoding, body string }{
		{`"1"`, "", `{"reason":"changed my mind"}`},
		{`W/"1"`, "", ``},
		{`"2", "3"`, "identity", ``},
		{`W/"1", , "7", "1"`, "", ``},
		{`"a,b"`, "", ``},
		{`*`, "gzip", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\xab\xae\x05\x00\x43\xbf\xa6\xa3\x02\x00\x00\x00"},
		{``, "gzip", `{"reason":"x"}`},
		{``, "identity, br", `{"reason":"x"}`},
		{``, "", `{"reason":"\ud800"}`},
		{``, "", `{"REASON":"x"}`},
		{``, "", `{"reason":"x","reason":"y"}`},
		{``, "", `{"reason":"a\u0000b\u001b[2J\r\u0007"}`},
		{`"1`, "", ``},
	} {
		f.Add(seed.ifMatch, seed.encoding, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, ifMatchHeader, encoding string, body []byte) {
		clientError := func(err error) {
			t.Helper()
			var de *domain.Error
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T) is not a domain error", err, err)
			}
			if k, ok := kinds[de.Code]; !ok || k.status < 400 || k.status >= 500 {
				t.Fatalf("error %v maps to %d, want a 4xx", err, k.status)
			}
		}
		im, err := parseIfMatch([]string{ifMatchHeader})
		if err != nil {
			clientError(err)
		} else if im.present && !im.any {
			for v := int64(1); v <= 3; v++ {
				strong := false
				for _, tag := range im.tags {
					strong = strong || tag == `"`+strconv.FormatInt(v, 10)+`"` || tag == strconv.FormatInt(v, 10)
				}
				if im.matches(v) != strong {
					t.Fatalf("If-Match %q: matches(%d) = %v, tags %q", ifMatchHeader, v, im.matches(v), im.tags)
				}
				if !strong {
					p := problemOf(httptest.NewRequest(http.MethodPost, "/orders/x/cancel", nil), im.failed(v))
					if p.Status != http.StatusPreconditionFailed || strings.Contains(p.Detail, "-1") {
						t.Fatalf("If-Match %q on version %d: %d %q", ifMatchHeader, v, p.Status, p.Detail)
					}
				}
			}
		}
		r := httptest.NewRequest(http.MethodPost, "/orders/x/cancel", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if encoding != "" {
			r.Header.Set("Content-Encoding", encoding)
		}
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, MaxBodyBytes)
		var req CancelRequest
		if err := decodeJSON(r, &req, false); err != nil {
			clientError(err)
			return
		}
		if !utf8.ValidString(req.Reason) || strings.ContainsRune(req.Reason, utf8.RuneError) && !bytes.ContainsRune(body, utf8.RuneError) && !bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) {
			t.Fatalf("accepted body %q decoded to reason %q: a character the body did not hold", body, req.Reason)
		}
		events, err := order.Decide(order.Fold("01KAW5Y8Z9ABCDEFGHJKMNPQRS", order.Placed{CustomerName: "a", ProductName: "b", Quantity: 1}), order.Cancel{Reason: req.Reason})
		if err != nil {
			clientError(err)
			return
		}
		if c, ok := events[0].(order.Cancelled); !ok || strings.IndexFunc(c.Reason, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			t.Fatalf("cancelled with reason %q", c.Reason)
		}
	})
}
