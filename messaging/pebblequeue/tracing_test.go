package pebblequeue_test

import (
	"context"
	"testing"

	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/messaging/pebblequeue"
)

// TestTraceParentAttribute: Send and Publish store the traceparent of the
// span in ctx as the traceparent attribute, unless the caller gave one.
func TestTraceParentAttribute(t *testing.T) {
	t.Parallel()
	b := openBroker(t)
	q, err := b.Queue("q", pebblequeue.QueueConfig{})
	if err != nil {
		t.Fatal(err)
	}
	topic, _ := b.Topic("t")
	if err := topic.Subscribe(q, nil); err != nil {
		t.Fatal(err)
	}
	const fromCtx = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ctx := tracing.Continue(context.Background(), fromCtx)
	attrs := map[string]string{messaging.AttrEventType: "OrderPlaced"}
	if _, err := q.Send(ctx, []byte("sent"), attrs); err != nil {
		t.Fatal(err)
	}
	if _, err := topic.Publish(ctx, []byte("published"), attrs); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Send(ctx, []byte("given"), map[string]string{messaging.AttrTraceParent: given}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Send(context.Background(), []byte("untraced"), attrs); err != nil {
		t.Fatal(err)
	}
	if _, ok := attrs[messaging.AttrTraceParent]; ok {
		t.Fatal("Send modified the caller's attributes")
	}
	want := map[string]string{"sent": fromCtx, "published": fromCtx, "given": given, "untraced": ""}
	msgs, err := q.Receive(context.Background(), 10, 0)
	if err != nil || len(msgs) != len(want) {
		t.Fatalf("received %d messages, %v", len(msgs), err)
	}
	for _, m := range msgs {
		if got := m.Attributes[messaging.AttrTraceParent]; got != want[string(m.Body)] {
			t.Errorf("%s: traceparent %q, want %q", m.Body, got, want[string(m.Body)])
		}
	}
}
