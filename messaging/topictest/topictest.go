// Package topictest is the conformance suite of the messaging.Topic port.
// Every adapter runs it from its own tests with a factory that makes a fresh
// topic with one subscribed queue per requested filter (raw delivery:
// the queue's messages carry the published body and attributes unchanged).
package topictest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/orderledger/orderledger/messaging"
)

// Features describes the adapter under test.
type Features struct {
	// Filters: subscriptions honour attribute filters.
	Filters bool
}

// Factory returns a fresh topic and, for each filter, a fresh queue
// subscribed to it with that filter (nil: everything).
type Factory func(t *testing.T, filters []messaging.Filter) (messaging.Topic, []messaging.Queue)

// Run runs every test of the suite.
func Run(t *testing.T, f Features, newTopic Factory) {
	t.Run("FanOut", func(t *testing.T) { t.Parallel(); testFanOut(t, newTopic) })
	t.Run("Filter", func(t *testing.T) {
		t.Parallel()
		if !f.Filters {
			t.Skip("adapter has no filters")
		}
		testFilter(t, newTopic)
	})
	t.Run("PublishBatch", func(t *testing.T) {
		t.Parallel()
		topic, _ := newTopic(t, nil)
		if _, ok := topic.(messaging.BatchTopic); !ok {
			t.Skip("adapter is not a messaging.BatchTopic (the publisher publishes one message per request)")
		}
		testPublishBatch(t, newTopic)
	})
}

// testPublishBatch: 23 messages (more than one request's worth) reach every
// subscription with their bodies and attributes, and filters apply to each.
func testPublishBatch(t *testing.T, newTopic Factory) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	placed := messaging.Filter{messaging.AttrEventType: {"OrderPlaced"}}
	topic, queues := newTopic(t, []messaging.Filter{nil, placed})
	var msgs []messaging.Outgoing
	var want, wantPlaced []string
	for i := range 23 {
		typ := "OrderCompleted"
		if i%3 == 0 {
			typ = "OrderPlaced"
			wantPlaced = append(wantPlaced, fmt.Sprintf(`{"n":%d}`, i))
		}
		want = append(want, fmt.Sprintf(`{"n":%d}`, i))
		msgs = append(msgs, messaging.Outgoing{Body: []byte(want[i]), Attrs: map[string]string{messaging.AttrEventType: typ, messaging.AttrOrderID: fmt.Sprint("o", i)}})
	}
	n, err := topic.(messaging.BatchTopic).PublishBatch(ctx, msgs)
	if err != nil || n != len(msgs) {
		t.Fatalf("PublishBatch = %d, %v; want %d, nil", n, err, len(msgs))
	}
	for qi, w := range [][]string{want, wantPlaced} {
		got := drain(t, ctx, queues[qi], len(w))
		var bodies []string
		for _, m := range got {
			bodies = append(bodies, string(m.Body))
			if m.Attributes[messaging.AttrOrderID] == "" || m.Attributes[messaging.AttrEventType] == "" {
				t.Errorf("queue %d: attributes %v lost", qi, m.Attributes)
			}
			if qi == 1 && m.Attributes[messaging.AttrEventType] != "OrderPlaced" {
				t.Errorf("filtered queue got %s", m.Attributes[messaging.AttrEventType])
			}
		}
		sort.Strings(bodies)
		sort.Strings(w)
		if fmt.Sprint(bodies) != fmt.Sprint(w) {
			t.Errorf("queue %d got %v, want %v", qi, bodies, w)
		}
	}
}

func drain(t *testing.T, ctx context.Context, q messaging.Queue, want int) []messaging.Message {
	t.Helper()
	var out []messaging.Message
	for empty := 0; empty < 3 && len(out) <= want; {
		wait := time.Second
		if len(out) == want {
			wait = 0 // anything beyond want is an error; look once more
		}
		msgs, err := q.Receive(ctx, 10, wait)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if len(msgs) == 0 {
			empty++
			if len(out) == want {
				break
			}
		}
		for _, m := range msgs {
			if err := q.Delete(ctx, m.ReceiptHandle); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, msgs...)
	}
	if len(out) != want {
		t.Fatalf("queue got %d messages, want %d", len(out), want)
	}
	return out
}

func testFanOut(t *testing.T, newTopic Factory) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic, queues := newTopic(t, []messaging.Filter{nil, nil})
	for i := range 3 {
		id, err := topic.Publish(ctx, []byte(fmt.Sprintf(`{"n":%d}`, i)), map[string]string{messaging.AttrEventType: "OrderCompleted", messaging.AttrOrderID: fmt.Sprint("o", i)})
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if id == "" {
			t.Fatal("Publish returned an empty ID")
		}
	}
	for qi, q := range queues {
		msgs := drain(t, ctx, q, 3)
		var bodies []string
		for _, m := range msgs {
			bodies = append(bodies, string(m.Body))
			if m.Attributes[messaging.AttrEventType] != "OrderCompleted" || m.Attributes[messaging.AttrOrderID] == "" {
				t.Errorf("queue %d: attributes %v lost", qi, m.Attributes)
			}
		}
		sort.Strings(bodies)
		if fmt.Sprint(bodies) != `[{"n":0} {"n":1} {"n":2}]` {
			t.Errorf("queue %d got %v", qi, bodies)
		}
	}
}

func testFilter(t *testing.T, newTopic Factory) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	placed := messaging.Filter{messaging.AttrEventType: {"OrderPlaced"}}
	topic, queues := newTopic(t, []messaging.Filter{placed, nil})
	for _, typ := range []string{"OrderPlaced", "OrderCompleted", "OrderFailed"} {
		if _, err := topic.Publish(ctx, []byte(typ), map[string]string{messaging.AttrEventType: typ}); err != nil {
			t.Fatal(err)
		}
	}
	if got := drain(t, ctx, queues[0], 1); string(got[0].Body) != "OrderPlaced" {
		t.Fatalf("filtered queue got %q, want OrderPlaced only", got[0].Body)
	}
	drain(t, ctx, queues[1], 3)
}
