package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/internal/tracing/tracingtest"
	"github.com/orderledger/orderledger/messaging/webhook"
)

// TestOneTraceFromRequestToNotification places orders through the wired
// embedded runtime with tracing on (the SDK's in-memory recorder) and
// follows each order's trace: the POST /orders server span, its append,
// the publish of OrderPlaced, the processor's steps and service calls, the
// completion notification and the webhook's POST, all with one trace ID,
// and every event of the order in /orders/{id}/events carries it. A
// request with a traceparent header is continued: its trace ID is the
// order's.
func TestOneTraceFromRequestToNotification(t *testing.T) {
	t.Parallel()
	rec := tracingtest.Install(t)
	hooks := make(chan http.Header, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hooks <- r.Header.Clone() }))
	defer hook.Close()
	a, err := Open(t.Context(), Config{Dir: t.TempDir(), Addr: "127.0.0.1:0", RetryBackoff: 10 * time.Millisecond, NotifyWebhook: hook.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	const incoming = "4bf92f3577b34da6a3ce929d0e0e4736"
	const incomingSpan = "00f067aa0ba902b7"
	for _, tc := range []struct{ name, traceparent string }{
		{"new trace", ""},
		{"incoming traceparent", "00-" + incoming + "-" + incomingSpan + "-01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/orders/", strings.NewReader(seed))
			req.Header.Set("Content-Type", "application/json")
			if tc.traceparent != "" {
				req.Header.Set("traceparent", tc.traceparent)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var placed struct {
				OrderID string `json:"order_id"`
			}
			json.NewDecoder(res.Body).Decode(&placed)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("place: %d", res.StatusCode)
			}
			id := placed.OrderID
			post := rec.WaitAttr(t, "request_id", res.Header.Get("X-Request-ID"), 10*time.Second)
			if post.Name() != "POST /orders" || post.SpanKind() != trace.SpanKindServer {
				t.Fatalf("the request's span is %s %q, want the server span %q", post.SpanKind(), post.Name(), "POST /orders")
			}
			traceID := post.SpanContext().TraceID().String()
			if tc.traceparent != "" && (traceID != incoming || post.Parent().SpanID().String() != incomingSpan) {
				t.Fatalf("POST span in trace %s (parent %s), want the incoming %s", traceID, post.Parent().SpanID(), tc.traceparent)
			}
			if tc.traceparent == "" && post.Parent().IsValid() {
				t.Fatalf("POST without traceparent has a parent: %v", post.Parent())
			}
			if got := waitStatus(t, a.Handler(), id); got["status"] != "Completed" {
				t.Fatalf("order ended %v", got)
			}
			// The webhook's request carries the trace.
			select {
			case h := <-hooks:
				if h.Get(webhook.HeaderOrderID) != id || tracing.TraceIDOf(h.Get("traceparent")) != traceID {
					t.Fatalf("webhook for %s with traceparent %q, want order %s in trace %s", h.Get(webhook.HeaderOrderID), h.Get("traceparent"), id, traceID)
				}
			case <-time.After(time.Minute):
				t.Fatal("no webhook delivery")
			}
			spans := rec.Wait(t, traceID, time.Minute, "POST /orders", "eventstore append", "publish OrderPlaced", "process order",
				"saga payment", "payment charge", "saga inventory", "inventory reserve", "notify OrderCompleted", "webhook POST")
			// The chain of causes: each hop a child of the one before.
			for child, parent := range map[string]string{
				"publish OrderPlaced":   "eventstore append",
				"process order":         "publish OrderPlaced",
				"saga payment":          "process order",
				"payment charge":        "saga payment",
				"notify OrderCompleted": "eventstore append",
				"webhook POST":          "notify OrderCompleted",
			} {
				c := tracingtest.Named(spans, child)[0]
				if p := tracingtest.Parent(spans, c); p == nil || p.Name() != parent {
					t.Errorf("%s's parent is %v, want %s", child, tracingtest.NameOf(p), parent)
				}
			}
			notify := tracingtest.Named(spans, "notify OrderCompleted")[0]
			if p := tracingtest.Parent(spans, notify); p == nil || tracingtest.Parent(spans, p).Name() != "saga inventory" {
				t.Errorf("the notification does not follow the append of the inventory step")
			}

			// Every event of the order carries the trace in its metadata.
			code, hist := call(t, a.Handler(), http.MethodGet, "/orders/"+id+"/events/", "")
			if code != http.StatusOK {
				t.Fatalf("events: %d %v", code, hist)
			}
			evs, _ := hist["events"].([]any)
			if len(evs) != 4 {
				t.Fatalf("%d events, want 4: %v", len(evs), hist)
			}
			for _, e := range evs {
				ev := e.(map[string]any)
				meta, _ := ev["metadata"].(map[string]any)
				tp, _ := meta["traceparent"].(string)
				if tracing.TraceIDOf(tp) != traceID {
					t.Errorf("%v v%v: metadata.traceparent %q, not in trace %s", ev["type"], ev["version"], tp, traceID)
				}
			}
		})
	}
}
