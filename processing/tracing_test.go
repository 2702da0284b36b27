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
	// Exactly these: the decision after the last append, which finds
	// nothing left to do, is not made, so it has no "saga settled" span.
	want := []string{"eventstore append", "eventstore append", "inventory reserve", "payment charge", "process order", "saga inventory", "saga payment"}
	if got := slices.Sorted(slices.Values(names)); !slices.Equal(got, want) {
		t.Errorf("spans of the trace %v, want %v", got, want)
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

// TestRedeliveryOfASettledOrderIsOneSettledStep: a delivery that finds
// nothing left to do records one "saga settled" decision (its span) and
// appends nothing.
func TestRedeliveryOfASettledOrderIsOneSettledStep(t *testing.T) {
	t.Parallel()
	rec := tracingtest.Install(t)
	p, store, _ := setup(t, sim.Config{})
	id, msg := placed(t, store, 1)
	if err := p.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	before, err := store.Load(context.Background(), id, 1)
	if err != nil {
		t.Fatal(err)
	}
	const traceID = "7d8efff798038103d269b633813fc60c"
	msg.Attributes[messaging.AttrTraceParent] = "00-" + traceID + "-eee19b7ec3c1b176-01"
	msg.ReceiveCount = 2
	if err := p.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(slices.Values(tracingtest.Names(rec.ByTrace(traceID)))), []string{"process order", "saga settled"}; !slices.Equal(got, want) {
		t.Errorf("redelivery's spans %v, want %v", got, want)
	}
	after, err := store.Load(context.Background(), id, 1)
	if err != nil || len(after) != len(before) {
		t.Fatalf("redelivery appended: %d events before, %d after (%v)", len(before), len(after), err)
	}
}
