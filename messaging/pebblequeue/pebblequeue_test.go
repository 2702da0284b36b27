package pebblequeue_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/messaging/pebblequeue"
	"github.com/orderledger/orderledger/messaging/queuetest"
	"github.com/orderledger/orderledger/messaging/topictest"
)

func openBroker(t *testing.T) *pebblequeue.Broker {
	t.Helper()
	b, err := pebblequeue.Open(t.TempDir(), pebblequeue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestQueueConformance(t *testing.T) {
	t.Parallel()
	b := openBroker(t)
	var n atomic.Int64
	queuetest.Run(t, queuetest.Features{VisibilityTimeout: time.Second}, func(t *testing.T) (messaging.Queue, messaging.Queue) {
		i := n.Add(1)
		dlq, err := b.Queue(fmt.Sprint("dlq-", i), pebblequeue.QueueConfig{})
		if err != nil {
			t.Fatal(err)
		}
		q, err := b.Queue(fmt.Sprint("q-", i), pebblequeue.QueueConfig{VisibilityTimeout: time.Second, DeadLetter: dlq})
		if err != nil {
			t.Fatal(err)
		}
		return q, dlq
	})
}

func TestTopicConformance(t *testing.T) {
	t.Parallel()
	b := openBroker(t)
	var n atomic.Int64
	topictest.Run(t, topictest.Features{Filters: true}, func(t *testing.T, filters []messaging.Filter) (messaging.Topic, []messaging.Queue) {
		i := n.Add(1)
		topic, err := b.Topic(fmt.Sprint("t-", i))
		if err != nil {
			t.Fatal(err)
		}
		var qs []messaging.Queue
		for j, f := range filters {
			q, err := b.Queue(fmt.Sprintf("t-%d-q-%d", i, j), pebblequeue.QueueConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := topic.Subscribe(q, f); err != nil {
				t.Fatal(err)
			}
			qs = append(qs, q)
		}
		return topic, qs
	})
}

func TestReopenKeepsMessagesAndReceiveCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	b, err := pebblequeue.Open(dir, pebblequeue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := b.Queue("q", pebblequeue.QueueConfig{VisibilityTimeout: time.Millisecond})
	if _, err := q.Send(ctx, []byte("kept"), map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if msgs, err := q.Receive(ctx, 1, time.Second); err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %v %v", msgs, err)
	}
	// Closed with the message in flight, as a crash would leave it.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Send(ctx, nil, nil); err == nil {
		t.Fatal("send after close succeeded")
	}
	b, err = pebblequeue.Open(dir, pebblequeue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q, _ = b.Queue("q", pebblequeue.QueueConfig{VisibilityTimeout: time.Millisecond})
	msgs, err := q.Receive(ctx, 1, 5*time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("after reopen: %v %v", msgs, err)
	}
	if m := msgs[0]; string(m.Body) != "kept" || m.Attributes["k"] != "v" || m.ReceiveCount != 2 {
		t.Fatalf("after reopen got %+v, want the message again with ReceiveCount 2", m)
	}
}

func TestDeclareRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := openBroker(t)
	for _, name := range []string{"", "a\x00b", "has space", strings.Repeat("x", 81)} {
		if _, err := b.Queue(name, pebblequeue.QueueConfig{}); err == nil {
			t.Errorf("Queue(%q) accepted", name)
		}
	}
	q, _ := b.Queue("same", pebblequeue.QueueConfig{})
	if _, err := b.Queue("same", pebblequeue.QueueConfig{VisibilityTimeout: time.Hour}); err == nil {
		t.Error("redeclaring a queue with other settings succeeded")
	}
	if _, err := b.Queue("self", pebblequeue.QueueConfig{DeadLetter: q}); err != nil {
		t.Error(err)
	}
	if _, err := q.Receive(context.Background(), 0, 0); err == nil {
		t.Error("Receive(max 0) accepted")
	}
}

// TestReopenReleasesInFlightAtOnce: a message received by a process that
// died (here: closed with the message in hand and a one-hour visibility
// timeout) is receivable as soon as the queue is declared after reopening,
// with its receive count kept, so a crash costs no visibility-timeout wait.
func TestReopenReleasesInFlightAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := pebblequeue.QueueConfig{VisibilityTimeout: time.Hour}
	b, err := pebblequeue.Open(dir, pebblequeue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := b.Queue("q", cfg)
	for _, body := range []string{"held", "returned"} {
		if _, err := q.Send(ctx, []byte(body), nil); err != nil {
			t.Fatal(err)
		}
	}
	if msgs, err := q.Receive(ctx, 1, time.Second); err != nil || len(msgs) != 1 || string(msgs[0].Body) != "held" {
		t.Fatalf("receive: %v %v", msgs, err)
	}
	msgs, err := q.Receive(ctx, 1, 10*time.Millisecond)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "returned" {
		t.Fatalf("second receive: %v %v", msgs, err)
	}
	// A failed attempt: handed back to wait out a retry delay.
	if err := q.ChangeVisibility(ctx, msgs[0].ReceiptHandle, time.Hour); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := q.Receive(ctx, 1, 10*time.Millisecond); len(msgs) != 0 {
		t.Fatalf("in-flight message received again before reopen: %v", msgs)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = pebblequeue.Open(dir, pebblequeue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q, _ = b.Queue("q", cfg)
	msgs, err = q.Receive(ctx, 10, 0)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("after reopen: %d messages, %v; want both at once", len(msgs), err)
	}
	// The receive cut off by the "crash" is uncounted; the failed attempt counts.
	want := map[string]int{"held": 1, "returned": 2}
	for _, m := range msgs {
		if m.ReceiveCount != want[string(m.Body)] {
			t.Fatalf("message %q has ReceiveCount %d, want %d", m.Body, m.ReceiveCount, want[string(m.Body)])
		}
	}
}

// TestCrashLoopingMessageStillDeadLetters: a receive cut off by a crash is
// uncounted only once per message, so a message that kills its process on
// every receive still reaches the dead-letter queue (one receive later).
func TestCrashLoopingMessageStillDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	open := func() (*pebblequeue.Broker, *pebblequeue.Queue, *pebblequeue.Queue) {
		b, err := pebblequeue.Open(dir, pebblequeue.Options{})
		if err != nil {
			t.Fatal(err)
		}
		dlq, _ := b.Queue("dlq", pebblequeue.QueueConfig{})
		q, err := b.Queue("q", pebblequeue.QueueConfig{VisibilityTimeout: time.Hour, DeadLetter: dlq})
		if err != nil {
			t.Fatal(err)
		}
		return b, q, dlq
	}
	b, q, _ := open()
	if _, err := q.Send(ctx, []byte("poison"), nil); err != nil {
		t.Fatal(err)
	}
	b.Close()
	receives := 0
	for cycle := 0; cycle < 10; cycle++ {
		b, q, dlq := open()
		if msgs, _ := dlq.Receive(ctx, 1, 0); len(msgs) == 1 {
			b.Close()
			if receives != messaging.MaxReceiveCount+1 {
				t.Fatalf("dead-lettered after %d receives, want %d (one crash forgiven)", receives, messaging.MaxReceiveCount+1)
			}
			return
		}
		if msgs, _ := q.Receive(ctx, 1, 0); len(msgs) == 1 {
			receives++
		}
		b.Close() // the process "dies" holding the message
	}
	t.Fatalf("message never dead-lettered after %d receives", receives)
}
