package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/internal/tracing/tracingtest"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/messaging/webhook"
)

func TestDelivery(t *testing.T) {
	t.Parallel()
	var got *http.Request
	var body string
	status := http.StatusInternalServerError
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	d, err := webhook.New(srv.URL+"/hook", nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := messaging.Message{ID: "m1", Body: []byte(`{"event_id":"E1"}`), ReceiveCount: 2,
		Attributes: map[string]string{messaging.AttrEventType: "OrderCompleted", messaging.AttrOrderID: "O1"}}
	if err := d.Handle(context.Background(), msg); err == nil {
		t.Fatal("a 500 answer was taken as delivered")
	}
	status = http.StatusOK
	if err := d.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	h := got.Header
	if got.Method != http.MethodPost || got.URL.Path != "/hook" || body != string(msg.Body) ||
		h.Get(webhook.HeaderEventID) != "E1" || h.Get("Idempotency-Key") != "E1" ||
		h.Get(webhook.HeaderEventType) != "OrderCompleted" || h.Get(webhook.HeaderOrderID) != "O1" ||
		h.Get(webhook.HeaderAttempt) != "2" || h.Get("Content-Type") != "application/json" {
		t.Fatalf("delivery %s %s %q headers %v", got.Method, got.URL.Path, body, h)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "mailto:x@y", "http://", "not a url"} {
		if _, err := webhook.New(u, nil); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

// TestDeliveryContinuesTrace: the POST carries a traceparent header of the
// delivery's span, a child of the notification's (the message attribute).
func TestDeliveryContinuesTrace(t *testing.T) {
	t.Parallel()
	rec := tracingtest.Install(t)
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()
	d, err := webhook.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	msg := messaging.Message{ID: "m2", Body: []byte(`{"event_id":"E2"}`), ReceiveCount: 1,
		Attributes: map[string]string{messaging.AttrTraceParent: "00-" + traceID + "-" + parentID + "-01"}}
	if err := d.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if tracing.TraceIDOf(got.Get("traceparent")) != traceID {
		t.Fatalf("webhook request traceparent %q, want trace %s", got.Get("traceparent"), traceID)
	}
	spans := tracingtest.Named(rec.ByTrace(traceID), "webhook POST")
	if len(spans) != 1 || spans[0].Parent().SpanID().String() != parentID {
		t.Fatalf("webhook spans in the trace: %v", tracingtest.Names(rec.ByTrace(traceID)))
	}
	if want := "00-" + traceID + "-" + spans[0].SpanContext().SpanID().String() + "-01"; got.Get("traceparent") != want {
		t.Fatalf("traceparent %q is not the delivery span's %q", got.Get("traceparent"), want)
	}
}
