package processing_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/internal/tracing/tracingtest"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/services/sim"
)

// TestHandleContinuesTheMessagesTrace: the saga runs in the trace of the
// message's traceparent, one span per step and per service call, and every
// event it appends carries that trace in its metadata.
func TestHandleContinuesTheMessagesTrace(t *testing.T) {
	t.Parallel()
	rec := tracingtest.Install(t)
	p, store, _ := setup(t, sim.Config{})
	id, msg := placed(t, store, 1)
	const traceID, publishSpan = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	msg.Attributes[messaging.AttrTraceParent] = "00-" + traceID + "-" + publishSpan + "-01"
	if err := p.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	spans := rec.ByTrace(traceID)
	names := tracingtest.Names(spans)
	for _, want := range []string{"process order", "saga payment", "payment charge", "saga inventory", "inventory reserve", "eventstore append", "saga settled"} {
		if !slices.Contains(names, want) {
			t.Errorf("no %q span in the trace: %v", want, names)
		}
	}
	root := tracingtest.Named(spans, "process order")
	if len(root) != 1 || root[0].Parent().SpanID().String() != publishSpan {
		t.Fatalf("process order span is not the publish span's child: %v", names)
	}
	if parent := tracingtest.Parent(spans, tracingtest.Named(spans, "payment charge")[0]); parent == nil || parent.Name() != "saga payment" {
		t.Fatalf("payment charge's parent is not the charge step: %v", parent)
	}
	envs, err := store.Load(context.Background(), id, 2)
	if err != nil || len(envs) < 3 {
		t.Fatalf("%d outcome events, %v", len(envs), err)
	}
	for _, e := range envs {
		if got := tracing.TraceIDOf(e.Metadata.TraceParent); got != traceID {
			t.Errorf("%s v%d: traceparent %q, not in trace %s", e.Type, e.Version, e.Metadata.TraceParent, traceID)
		}
	}
}

// TestHandleContinuesTheEventsTrace: a message without the attribute (sent
// before it existed) continues the trace in the OrderPlaced metadata.
func TestHandleContinuesTheEventsTrace(t *testing.T) {
	t.Parallel()
	rec := tracingtest.Install(t)
	p, store, _ := setup(t, sim.Config{})
	_, msg := placed(t, store, 1)
	const traceID = "6c8efff798038103d269b633813fc60c"
	msg.Body = []byte(strings.Replace(string(msg.Body), `"metadata":{}`, `"metadata":{"traceparent":"00-`+traceID+`-eee19b7ec3c1b175-01"}`, 1))
	if err := p.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if len(tracingtest.Named(rec.ByTrace(traceID), "process order")) != 1 {
		t.Fatalf("the saga did not continue the event's trace: %s", msg.Body)
	}
}
