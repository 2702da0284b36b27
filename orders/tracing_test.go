package orders_test

import (
	"context"
	"testing"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/tracing"
)

// TestAppendsCarryTheTraceOfTheirContext: the events of Place and Update
// carry the traceparent of the span context in ctx. Tracing is off in this
// test binary (no recorder: the other tests compare metadata exactly), so
// the append's span is a no-op one that passes the incoming context on;
// with tracing on it is the append span's own, which the app package's
// trace test checks.
func TestAppendsCarryTheTraceOfTheirContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := tracing.Continue(context.Background(), tp)
	p, err := f.svc.Place(ctx, "", order.Place{CustomerName: "Ada", ProductName: "Tea", Quantity: 1}, eventstore.Metadata{RequestID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	oid := p.Events[0].StreamID
	if _, err := f.svc.Update(ctx, oid, eventstore.Metadata{}, func(o order.Order) ([]order.Event, error) {
		return order.Decide(o, order.Cancel{Reason: "test"})
	}); err != nil {
		t.Fatal(err)
	}
	// Without a trace in ctx, the caller's traceparent stands.
	const given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	if _, err := f.svc.Update(context.Background(), oid, eventstore.Metadata{TraceParent: given}, func(o order.Order) ([]order.Event, error) {
		return []order.Event{order.PaymentVoided{Reason: "test"}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	stored, err := f.store.Load(context.Background(), oid, 1)
	if err != nil || len(stored) != 3 {
		t.Fatalf("%d events, %v", len(stored), err)
	}
	for i, want := range []string{tp, tp, given} {
		if got := stored[i].Metadata.TraceParent; got != want {
			t.Errorf("%s: traceparent %q, want %q", stored[i].Type, got, want)
		}
	}
}
