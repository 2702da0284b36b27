package publisher_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/tracing/tracingtest"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/messaging/pebblequeue"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/publisher"
)

func TestRoutesAndCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := pebblestore.Open(filepath.Join(dir, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	b, err := pebblequeue.Open(filepath.Join(dir, "queue"), pebblequeue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	events, _ := b.Topic("events")
	completed, _ := b.Topic("completed")
	eq, _ := b.Queue("eq", pebblequeue.QueueConfig{})
	cq, _ := b.Queue("cq", pebblequeue.QueueConfig{})
	events.Subscribe(eq, nil)
	completed.Subscribe(cq, nil)

	codec, ids := orders.NewCodec(), domain.NewULIDSource(nil)
	now := time.Now().UTC()
	id := ids(now)
	var envs []eventstore.Event
	for _, e := range []order.Event{order.Placed{CustomerName: "A", ProductName: "B", Quantity: 1},
		order.PaymentSucceeded{PaymentID: "p", Amount: 1}, order.InventoryReserved{ReservationID: "r"}, order.Completed{}} {
		env, _ := codec.Encode(e, ids(now), now, eventstore.Metadata{})
		env.StreamID = id
		envs = append(envs, env)
	}
	if _, err := store.Append(ctx, id, 0, envs...); err != nil {
		t.Fatal(err)
	}
	p, err := publisher.New(publisher.Config{Events: events, Completed: completed, Feed: store, Checkpoints: store})
	if err != nil {
		t.Fatal(err)
	}
	if lag, _ := p.Lag(ctx); lag != 4 {
		t.Fatalf("lag before = %d, want 4", lag)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- p.Run(runCtx) }()
	for lag := uint64(1); lag > 0; {
		lag, _ = p.Lag(ctx)
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	check := func(q *pebblequeue.Queue, wantType string) {
		t.Helper()
		msgs, err := q.Peek(ctx, 0)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("queue %s holds %d messages (%v), want 1", q.Name(), len(msgs), err)
		}
		var env eventstore.Event
		if err := json.Unmarshal(msgs[0].Body, &env); err != nil || env.Type != wantType || env.StreamID != id {
			t.Fatalf("queue %s got %s %v", q.Name(), msgs[0].Body, err)
		}
		a := msgs[0].Attributes
		if a[messaging.AttrEventType] != wantType || a[messaging.AttrOrderID] != id || a[messaging.AttrEventID] != env.EventID {
			t.Fatalf("attributes %v", a)
		}
	}
	check(eq, order.TypePlaced)
	check(cq, order.TypeCompleted)
	// A restarted publisher resumes after its checkpoint: nothing twice.
	runCtx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	p.Run(runCtx)
	check(eq, order.TypePlaced)
	check(cq, order.TypeCompleted)
}

func TestRouteOf(t *testing.T) {
	t.Parallel()
	want := map[string]publisher.Route{
		order.TypePlaced: publisher.Events, order.TypeCompleted: publisher.Completed, order.TypeFailed: publisher.Completed,
		order.TypeCancelled: publisher.Completed, order.TypePaymentSucceeded: publisher.None, order.TypePaymentRefunded: publisher.None,
	}
	for typ, r := range want {
		if got := publisher.RouteOf(typ); got != r {
			t.Errorf("RouteOf(%s) = %d, want %d", typ, got, r)
		}
	}
}

// failingTopic refuses every publish from the n-th on.
type failingTopic struct {
	messaging.Topic
	n, calls int
}

func (f *failingTopic) Publish(ctx context.Context, body []byte, attrs map[string]string) (string, error) {
	if f.calls++; f.calls >= f.n {
		return "", errors.New("topic down")
	}
	return f.Topic.Publish(ctx, body, attrs)
}

// TestPublishBatchReportsTheKnownPublishedPrefix: PublishBatch routes a
// batch of two orders' events to both topics and answers how many, from
// the first, are known published; when the completed topic fails on its
// second message, that event is the first not known published.
func TestPublishBatchReportsTheKnownPublishedPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := pebblequeue.Open(t.TempDir(), pebblequeue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	events, _ := b.Topic("events")
	completed, _ := b.Topic("completed")
	eq, _ := b.Queue("eq", pebblequeue.QueueConfig{})
	cq, _ := b.Queue("cq", pebblequeue.QueueConfig{})
	events.Subscribe(eq, nil)
	completed.Subscribe(cq, nil)
	codec, ids := orders.NewCodec(), domain.NewULIDSource(nil)
	now := time.Now().UTC()
	var envs []eventstore.Event
	for _, e := range []order.Event{order.Placed{CustomerName: "A", ProductName: "B", Quantity: 1}, order.PaymentSucceeded{PaymentID: "p", Amount: 1},
		order.Completed{}, order.Placed{CustomerName: "C", ProductName: "D", Quantity: 1}, order.Cancelled{}} {
		env, _ := codec.Encode(e, ids(now), now, eventstore.Metadata{})
		env.StreamID = "o" + env.EventID
		envs = append(envs, env)
	}
	p, err := publisher.New(publisher.Config{Events: events, Completed: completed})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.PublishBatch(ctx, envs); err != nil || n != len(envs) {
		t.Fatalf("PublishBatch = %d, %v; want %d, nil", n, err, len(envs))
	}
	for q, want := range map[*pebblequeue.Queue]int{eq: 2, cq: 2} {
		if msgs, _ := q.Peek(ctx, 0); len(msgs) != want {
			t.Fatalf("queue %s holds %d messages, want %d", q.Name(), len(msgs), want)
		}
	}
	p, err = publisher.New(publisher.Config{Events: events, Completed: &failingTopic{Topic: completed, n: 2}})
	if err != nil {
		t.Fatal(err)
	}
	// Completed (index 2) goes; Cancelled (index 4) fails: 4 known published.
	if n, err := p.PublishBatch(ctx, envs); err == nil || n != 4 {
		t.Fatalf("PublishBatch = %d, %v; want 4 and the topic's error", n, err)
	}
}

// TestPublishContinuesTheEventsTrace: Publish and PublishBatch give the
// message the traceparent of a "notify OrderCompleted" span in the trace
// of the event's Metadata.TraceParent, child of the span that appended it.
func TestPublishContinuesTheEventsTrace(t *testing.T) {
	t.Parallel()
	rec := tracingtest.Install(t)
	for _, tc := range []struct {
		name, traceID string
		publish       func(ctx context.Context, p *publisher.Publisher, ev eventstore.Event) error
	}{
		{"Publish", "0af7651916cd43dd8448eb211c80319c", func(ctx context.Context, p *publisher.Publisher, ev eventstore.Event) error {
			return p.Publish(ctx, ev)
		}},
		{"PublishBatch", "1af7651916cd43dd8448eb211c80319c", func(ctx context.Context, p *publisher.Publisher, ev eventstore.Event) error {
			_, err := p.PublishBatch(ctx, []eventstore.Event{ev})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			traceID := tc.traceID
			ctx := context.Background()
			b, err := pebblequeue.Open(filepath.Join(t.TempDir(), "queue"), pebblequeue.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			events, _ := b.Topic("events")
			completed, _ := b.Topic("completed")
			cq, _ := b.Queue("cq", pebblequeue.QueueConfig{})
			completed.Subscribe(cq, nil)
			p, err := publisher.New(publisher.Config{Events: events, Completed: completed})
			if err != nil {
				t.Fatal(err)
			}
			codec, ids := orders.NewCodec(), domain.NewULIDSource(nil)
			now := time.Now().UTC()
			const appendSpan = "b7ad6b7169203331"
			env, _ := codec.Encode(order.Completed{}, ids(now), now, eventstore.Metadata{TraceParent: "00-" + traceID + "-" + appendSpan + "-01"})
			env.StreamID, env.Version = ids(now), 4
			if err := tc.publish(ctx, p, env); err != nil {
				t.Fatal(err)
			}
			spans := tracingtest.Named(rec.ByTrace(traceID), "notify OrderCompleted")
			if len(spans) != 1 || spans[0].Parent().SpanID().String() != appendSpan {
				t.Fatalf("spans of the trace: %v", tracingtest.Names(rec.ByTrace(traceID)))
			}
			msgs, err := cq.Peek(ctx, 0)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("%d messages, %v", len(msgs), err)
			}
			want := "00-" + traceID + "-" + spans[0].SpanContext().SpanID().String() + "-01"
			if got := msgs[0].Attributes[messaging.AttrTraceParent]; got != want {
				t.Fatalf("traceparent attribute %q, want the notify span's %q", got, want)
			}
		})
	}
}
