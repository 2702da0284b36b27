package awsapp_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/orderledger/orderledger/aws/awsapp"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/internal/tracing/tracingtest"
)

// TestOneTraceFromRequestToNotification runs the AWS runtime with its
// local mappings on moto, through the real SDK, with tracing on (the SDK's
// in-memory recorder): an order's POST /orders span, its append, the
// publish of OrderPlaced from the DynamoDB stream (the trace read back
// from the stored event), the processor's steps (the trace carried from
// SNS to SQS in the traceparent message attribute) and the completion
// notification are one trace. An incoming traceparent is continued, and
// every event of the order in /orders/{id}/events carries its trace ID.
func TestOneTraceFromRequestToNotification(t *testing.T) {
	t.Parallel()
	rec := tracingtest.Install(t)
	names, _ := awstest.Bootstrap(t)
	ctx := context.Background()
	a, err := awsapp.Open(ctx, awsapp.Config{AWS: awstest.Config(t), Env: names.Env, Addr: "127.0.0.1:0",
		LocalMappings: true, Workers: 1, RetryBackoff: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)

	const incoming, incomingSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/orders/", strings.NewReader(`{"customer_name": "Ada", "product_name": "tea", "quantity": 1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+incoming+"-"+incomingSpan+"-01")
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
	post := rec.WaitAttr(t, "request_id", res.Header.Get("X-Request-ID"), 10*time.Second)
	if post.Name() != "POST /orders" || post.SpanKind() != trace.SpanKindServer ||
		post.SpanContext().TraceID().String() != incoming || post.Parent().SpanID().String() != incomingSpan {
		t.Fatalf("request span %q in trace %s (parent %s), want POST /orders continuing %s", post.Name(),
			post.SpanContext().TraceID(), post.Parent().SpanID(), incoming)
	}
	spans := rec.Wait(t, incoming, 2*time.Minute, "POST /orders", "eventstore append", "publish OrderPlaced", "process order",
		"saga payment", "payment charge", "saga inventory", "inventory reserve", "saga complete", "notify OrderCompleted")
	for child, parent := range map[string]string{
		"publish OrderPlaced":   "eventstore append",   // from the stream record's metadata
		"process order":         "publish OrderPlaced", // from the SQS message attribute, through SNS
		"saga payment":          "process order",
		"inventory reserve":     "saga inventory",
		"notify OrderCompleted": "eventstore append",
	} {
		c := tracingtest.Named(spans, child)[0]
		if p := tracingtest.Parent(spans, c); p == nil || p.Name() != parent {
			t.Errorf("%s's parent is %s, want %s", child, tracingtest.NameOf(p), parent)
		}
	}
	notify := tracingtest.Named(spans, "notify OrderCompleted")[0]
	if p := tracingtest.Parent(spans, notify); p == nil || tracingtest.NameOf(tracingtest.Parent(spans, p)) != "saga complete" {
		t.Errorf("the notification does not follow the append of the complete step")
	}

	res, err = http.Get(srv.URL + "/orders/" + placed.OrderID + "/events/")
	if err != nil {
		t.Fatal(err)
	}
	var hist struct {
		Events []struct {
			Type     string `json:"type"`
			Metadata struct {
				TraceParent string `json:"traceparent"`
			} `json:"metadata"`
		} `json:"events"`
	}
	json.NewDecoder(res.Body).Decode(&hist)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || len(hist.Events) != 4 {
		t.Fatalf("events: %d, %d events", res.StatusCode, len(hist.Events))
	}
	for _, e := range hist.Events {
		if tracing.TraceIDOf(e.Metadata.TraceParent) != incoming {
			t.Errorf("%s: metadata.traceparent %q, not in trace %s", e.Type, e.Metadata.TraceParent, incoming)
		}
	}
}
