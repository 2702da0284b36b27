// Package queuetest is the conformance suite of the messaging.Queue port.
// Every adapter runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		queuetest.Run(t, queuetest.Features{VisibilityTimeout: time.Second}, func(t *testing.T) (messaging.Queue, messaging.Queue) {
//			... return a fresh, empty queue whose redrive policy sends to the fresh dlq ...
//		})
//	}
//
// Features says which guarantees the adapter offers, so one suite fits
// adapters that differ (watermill's approach).
package queuetest

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/messaging"
)

// Features describes the adapter under test.
type Features struct {
	// VisibilityTimeout is the visibility timeout of the queues the factory
	// makes. The expiry test runs only when it is at most 2s; the suite
	// assumes a received message stays invisible for at least a few hundred
	// milliseconds.
	VisibilityTimeout time.Duration
	// MaxReceiveCount is the redrive policy's count (0: messaging.MaxReceiveCount).
	MaxReceiveCount int
	// NoDeadLetter skips the dead-letter tests (dlq may then be nil).
	NoDeadLetter bool
	// AtLeastOnce: the queue may, rarely, hand a message to a second
	// receiver while the first still holds it, as SQS standard queues do.
	// Concurrent receivers then must still get every message, but a
	// duplicate is not a failure (consumers de-duplicate by ID).
	AtLeastOnce bool
}

// Factory returns a fresh empty queue and its fresh empty dead-letter queue.
type Factory func(t *testing.T) (q, dlq messaging.Queue)

// Run runs every test of the suite.
func Run(t *testing.T, f Features, newQueue Factory) {
	if f.MaxReceiveCount == 0 {
		f.MaxReceiveCount = messaging.MaxReceiveCount
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Features, Factory)
	}{
		{"SendReceiveDelete", testSendReceiveDelete},
		{"EmptyReceive", testEmptyReceive},
		{"InvisibleInFlight", testInvisibleInFlight},
		{"VisibilityExpiry", testVisibilityExpiry},
		{"DeleteTwice", testDeleteTwice},
		{"InvalidReceipt", testInvalidReceipt},
		{"DeadLetter", testDeadLetter},
		{"ConcurrentReceivers", testConcurrentReceivers},
		{"LongPollWakesOnSend", testLongPoll},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, f, newQueue)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// receiveN receives until n messages arrived or many polls found nothing.
func receiveN(t *testing.T, ctx context.Context, q messaging.Queue, n int) []messaging.Message {
	t.Helper()
	var out []messaging.Message
	for empty := 0; len(out) < n && empty < 20; {
		msgs, err := q.Receive(ctx, min(10, n-len(out)), time.Second)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if len(msgs) == 0 {
			empty++
		}
		out = append(out, msgs...)
	}
	if len(out) != n {
		t.Fatalf("received %d messages, want %d", len(out), n)
	}
	return out
}

func testSendReceiveDelete(t *testing.T, _ Features, newQueue Factory) {
	ctx := ctxFor(t)
	q, _ := newQueue(t)
	sent := map[string]string{}
	for i := range 3 {
		body := fmt.Sprintf(`{"n":%d}`, i)
		id, err := q.Send(ctx, []byte(body), map[string]string{messaging.AttrEventType: "OrderPlaced", messaging.AttrOrderID: fmt.Sprint("o", i)})
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if id == "" {
			t.Fatal("Send returned an empty ID")
		}
		sent[body] = fmt.Sprint("o", i)
	}
	got := receiveN(t, ctx, q, 3)
	for _, m := range got {
		want, ok := sent[string(m.Body)]
		if !ok {
			t.Fatalf("unexpected body %q", m.Body)
		}
		delete(sent, string(m.Body))
		if m.Attributes[messaging.AttrOrderID] != want || m.Attributes[messaging.AttrEventType] != "OrderPlaced" {
			t.Errorf("attributes = %v, want order_id %s and event_type OrderPlaced", m.Attributes, want)
		}
		if m.ReceiveCount != 1 {
			t.Errorf("ReceiveCount = %d, want 1", m.ReceiveCount)
		}
		if m.ID == "" || m.ReceiptHandle == "" {
			t.Errorf("message without ID or receipt handle: %+v", m)
		}
		if err := q.Delete(ctx, m.ReceiptHandle); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if msgs, err := q.Receive(ctx, 10, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("after deleting all: Receive = %d messages, %v; want none", len(msgs), err)
	}
}

func testEmptyReceive(t *testing.T, _ Features, newQueue Factory) {
	ctx := ctxFor(t)
	q, _ := newQueue(t)
	msgs, err := q.Receive(ctx, 10, 0)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("Receive on an empty queue = %d messages, %v; want none, nil", len(msgs), err)
	}
}

func testInvisibleInFlight(t *testing.T, _ Features, newQueue Factory) {
	ctx := ctxFor(t)
	q, _ := newQueue(t)
	if _, err := q.Send(ctx, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	first := receiveN(t, ctx, q, 1)[0]
	if msgs, err := q.Receive(ctx, 10, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("message in flight was received again: %d messages, %v", len(msgs), err)
	}
	if err := q.ChangeVisibility(ctx, first.ReceiptHandle, 0); err != nil {
		t.Fatalf("ChangeVisibility(0): %v", err)
	}
	second := receiveN(t, ctx, q, 1)[0]
	if second.ID != first.ID || !bytes.Equal(second.Body, first.Body) {
		t.Fatalf("redelivered %+v, want the same message as %+v", second, first)
	}
	if second.ReceiveCount != 2 {
		t.Fatalf("ReceiveCount on redelivery = %d, want 2", second.ReceiveCount)
	}
	if second.ReceiptHandle == first.ReceiptHandle {
		t.Fatal("receipt handle did not change on redelivery")
	}
	if err := q.Delete(ctx, second.ReceiptHandle); err != nil {
		t.Fatal(err)
	}
}

func testVisibilityExpiry(t *testing.T, f Features, newQueue Factory) {
	if f.VisibilityTimeout <= 0 || f.VisibilityTimeout > 2*time.Second {
		t.Skip("visibility timeout too long for a test")
	}
	ctx := ctxFor(t)
	q, _ := newQueue(t)
	if _, err := q.Send(ctx, []byte("y"), nil); err != nil {
		t.Fatal(err)
	}
	first := receiveN(t, ctx, q, 1)[0]
	// Not deleted: it must come back by itself once the timeout passes.
	again := receiveN(t, ctx, q, 1)[0]
	if again.ID != first.ID || again.ReceiveCount != 2 {
		t.Fatalf("after expiry got %+v, want message %s with ReceiveCount 2", again, first.ID)
	}
}

func testDeleteTwice(t *testing.T, _ Features, newQueue Factory) {
	ctx := ctxFor(t)
	q, _ := newQueue(t)
	if _, err := q.Send(ctx, []byte("z"), nil); err != nil {
		t.Fatal(err)
	}
	m := receiveN(t, ctx, q, 1)[0]
	if err := q.Delete(ctx, m.ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if err := q.Delete(ctx, m.ReceiptHandle); err != nil {
		t.Fatalf("second Delete: %v, want nil", err)
	}
}

func testInvalidReceipt(t *testing.T, _ Features, newQueue Factory) {
	ctx := ctxFor(t)
	q, _ := newQueue(t)
	if err := q.ChangeVisibility(ctx, "not-a-receipt", 0); err == nil {
		t.Fatal("ChangeVisibility with a bogus receipt handle succeeded")
	}
}

func testDeadLetter(t *testing.T, f Features, newQueue Factory) {
	if f.NoDeadLetter {
		t.Skip("adapter has no dead-letter queue")
	}
	ctx := ctxFor(t)
	q, dlq := newQueue(t)
	if _, err := q.Send(ctx, []byte("poison"), map[string]string{messaging.AttrOrderID: "p"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= f.MaxReceiveCount; i++ {
		m := receiveN(t, ctx, q, 1)[0]
		if m.ReceiveCount != i {
			t.Fatalf("receive %d: ReceiveCount = %d", i, m.ReceiveCount)
		}
		if err := q.ChangeVisibility(ctx, m.ReceiptHandle, 0); err != nil {
			t.Fatal(err)
		}
	}
	// A good message sent now must flow although the poison one is due.
	if _, err := q.Send(ctx, []byte("good"), nil); err != nil {
		t.Fatal(err)
	}
	m := receiveN(t, ctx, q, 1)[0]
	if string(m.Body) != "good" {
		t.Fatalf("after %d receives got %q, want the poison message dead-lettered and %q delivered", f.MaxReceiveCount, m.Body, "good")
	}
	if err := q.Delete(ctx, m.ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	dead := receiveN(t, ctx, dlq, 1)[0]
	if string(dead.Body) != "poison" || dead.Attributes[messaging.AttrOrderID] != "p" {
		t.Fatalf("dead letter = %q %v, want the poison message with its attributes", dead.Body, dead.Attributes)
	}
	if msgs, err := q.Receive(ctx, 10, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("source queue still delivers %d messages, %v", len(msgs), err)
	}
}

func testConcurrentReceivers(t *testing.T, f Features, newQueue Factory) {
	ctx := ctxFor(t)
	q, _ := newQueue(t)
	const n = 20
	for i := range n {
		if _, err := q.Send(ctx, []byte(fmt.Sprint(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for empty := 0; empty < 3; {
				msgs, err := q.Receive(ctx, 5, 200*time.Millisecond)
				if err != nil {
					t.Errorf("Receive: %v", err)
					return
				}
				if len(msgs) == 0 {
					empty++
				}
				for _, m := range msgs {
					mu.Lock()
					got = append(got, string(m.Body))
					mu.Unlock()
					if err := q.Delete(ctx, m.ReceiptHandle); err != nil {
						t.Errorf("Delete: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	sort.Strings(got)
	seen := map[string]bool{}
	for _, b := range got {
		if seen[b] && !f.AtLeastOnce {
			t.Errorf("message %s received twice while in flight", b)
		}
		seen[b] = true
	}
	if len(seen) != n {
		t.Fatalf("received %d distinct messages, want %d", len(seen), n)
	}
}

func testLongPoll(t *testing.T, _ Features, newQueue Factory) {
	ctx := ctxFor(t)
	q, _ := newQueue(t)
	done := make(chan []messaging.Message, 1)
	go func() {
		msgs, err := q.Receive(ctx, 1, 10*time.Second)
		if err != nil {
			t.Errorf("Receive: %v", err)
		}
		done <- msgs
	}()
	if _, err := q.Send(ctx, []byte("late"), nil); err != nil {
		t.Fatal(err)
	}
	msgs := <-done
	if len(msgs) == 0 {
		// The long poll may have begun after the send and still be fine; it
		// must not return empty while a message is visible.
		msgs = receiveN(t, ctx, q, 1)
	}
	if string(msgs[0].Body) != "late" {
		t.Fatalf("long poll got %q, want %q", msgs[0].Body, "late")
	}
}
