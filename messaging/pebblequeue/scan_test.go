package pebblequeue_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/messaging/pebblequeue"
)

// manualClock is a clock the test moves by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func receiveOne(t *testing.T, q *pebblequeue.Queue) (messaging.Message, bool) {
	t.Helper()
	msgs, err := q.Receive(context.Background(), 1, 0)
	if err != nil {
		t.Fatalf("receive from %s: %v", q.Name(), err)
	}
	if len(msgs) == 0 {
		return messaging.Message{}, false
	}
	return msgs[0], true
}

func mustReceive(t *testing.T, q *pebblequeue.Queue, body string, count int) messaging.Message {
	t.Helper()
	m, ok := receiveOne(t, q)
	if !ok || string(m.Body) != body || m.ReceiveCount != count {
		t.Fatalf("receive from %s: got %q (count %d, found %v), want %q (count %d)", q.Name(), m.Body, m.ReceiveCount, ok, body, count)
	}
	return m
}

func mustBeEmpty(t *testing.T, q *pebblequeue.Queue) {
	t.Helper()
	if m, ok := receiveOne(t, q); ok {
		t.Fatalf("receive from %s: got %q, want nothing", q.Name(), m.Body)
	}
}

// TestReceiveSeesEveryWriteBehindItsScan: a receive seeks past what earlier
// receives consumed; every way a message can (re)appear in a queue after such
// a receive (send, publish, visibility change, visibility timeout, dead
// letter, redrive, reopen) must still be received.
func TestReceiveSeesEveryWriteBehindItsScan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	b, err := pebblequeue.Open(dir, pebblequeue.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close() }()
	dlq, _ := b.Queue("dlq", pebblequeue.QueueConfig{})
	q, err := b.Queue("q", pebblequeue.QueueConfig{VisibilityTimeout: 10 * time.Second, DeadLetter: dlq, MaxReceiveCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	topic, _ := b.Topic("t")
	if err := topic.Subscribe(q, nil); err != nil {
		t.Fatal(err)
	}
	// Empty scans leave both queues' lower bounds past every key.
	mustBeEmpty(t, q)
	mustBeEmpty(t, dlq)

	for _, body := range []string{"a", "b"} {
		if _, err := q.Send(ctx, []byte(body), nil); err != nil {
			t.Fatal(err)
		}
	}
	a := mustReceive(t, q, "a", 1)
	b1 := mustReceive(t, q, "b", 1)
	mustBeEmpty(t, q)

	// Handed back at once: below the scan's bound again.
	if err := q.ChangeVisibility(ctx, a.ReceiptHandle, 0); err != nil {
		t.Fatal(err)
	}
	a = mustReceive(t, q, "a", 2)
	// Handed back with a delay: due later, not now.
	if err := q.ChangeVisibility(ctx, b1.ReceiptHandle, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	mustBeEmpty(t, q)
	clock.Add(6 * time.Second)
	mustReceive(t, q, "b", 2)

	// Published while the queue was scanned empty.
	if _, err := topic.Publish(ctx, []byte("c"), nil); err != nil {
		t.Fatal(err)
	}
	mustReceive(t, q, "c", 1)
	mustBeEmpty(t, q)

	// a's visibility timeout runs out: due again, and having been received
	// MaxReceiveCount times it moves to the dead-letter queue, whose scan
	// found it empty before.
	clock.Add(5 * time.Second)
	if m, ok := receiveOne(t, q); ok {
		t.Fatalf("dead-letter candidate delivered: %q", m.Body)
	}
	mustReceive(t, dlq, "a", 1)
	mustBeEmpty(t, dlq)

	// Redriven back to q.
	if found, err := dlq.MoveTo(ctx, a.ID, q); err != nil || !found {
		t.Fatalf("move: %v %v", found, err)
	}
	mustReceive(t, q, "a", 1)
	mustBeEmpty(t, q)

	// Reopened: what was in flight is released at once.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err = pebblequeue.Open(dir, pebblequeue.Options{Clock: clock.Now}); err != nil {
		t.Fatal(err)
	}
	dlq, _ = b.Queue("dlq", pebblequeue.QueueConfig{})
	q, _ = b.Queue("q", pebblequeue.QueueConfig{VisibilityTimeout: 10 * time.Second, DeadLetter: dlq, MaxReceiveCount: 2})
	got := map[string]bool{}
	for {
		m, ok := receiveOne(t, q)
		if !ok {
			break
		}
		got[string(m.Body)] = true
	}
	if len(got) != 3 || !got["a"] || !got["b"] || !got["c"] {
		t.Fatalf("after reopen received %v, want a, b and c", got)
	}
}

// TestReceiveInBatchesGetsEachMessageOnce: receives of several messages at a
// time, interleaved with deletes and sends, hand out every message exactly
// once and in order.
func TestReceiveInBatchesGetsEachMessageOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := openBroker(t)
	q, err := b.Queue("q", pebblequeue.QueueConfig{VisibilityTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	sent := 0
	var got []string
	for len(got) < n {
		for range 5 {
			if sent < n {
				if _, err := q.Send(ctx, []byte(fmt.Sprint(sent)), nil); err != nil {
					t.Fatal(err)
				}
				sent++
			}
		}
		msgs, err := q.Receive(ctx, 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			got = append(got, string(m.Body))
			if err := q.Delete(ctx, m.ReceiptHandle); err != nil {
				t.Fatal(err)
			}
		}
		if len(msgs) == 0 && sent == n {
			break
		}
	}
	if len(got) != n {
		t.Fatalf("received %d messages, want %d", len(got), n)
	}
	for i, body := range got {
		if body != fmt.Sprint(i) {
			t.Fatalf("message %d is %q, want %q (order or duplicates)", i, body, fmt.Sprint(i))
		}
	}
	if msgs, _ := q.Receive(ctx, 10, 0); len(msgs) != 0 {
		t.Fatalf("%d messages left after all were deleted", len(msgs))
	}
}

// TestReceiveMatchesAModel runs random sends, receives, deletes, visibility
// changes and clock steps against a queue and a plain in-memory model of it:
// every receive must return exactly the messages the model says are due, in
// index order, however the receive's lower bound and skipped range moved.
func TestReceiveMatchesAModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b, err := pebblequeue.Open(t.TempDir(), pebblequeue.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const vis = 10 * time.Second
	q, err := b.Queue("q", pebblequeue.QueueConfig{VisibilityTimeout: vis})
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		at      time.Time
		receipt string
	}
	model := map[string]*entry{} // message ID -> state
	rng := rand.New(rand.NewPCG(1, 2))
	due := func(max int) []string {
		var ids []string
		for id, e := range model {
			if !e.at.After(clock.Now()) {
				ids = append(ids, id)
			}
		}
		slices.SortFunc(ids, func(a, b string) int {
			if c := model[a].at.Compare(model[b].at); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		return ids[:min(max, len(ids))]
	}
	inFlight := func() []string {
		var ids []string
		for id, e := range model {
			if e.receipt != "" {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		return ids
	}
	for step := range 3000 {
		switch op := rng.IntN(10); {
		case op < 3:
			id, err := q.Send(ctx, []byte("m"), nil)
			if err != nil {
				t.Fatal(err)
			}
			model[id] = &entry{at: clock.Now()}
		case op < 6:
			max := 1 + rng.IntN(3)
			want := due(max)
			msgs, err := q.Receive(ctx, max, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, m.ID)
				model[m.ID].at, model[m.ID].receipt = clock.Now().Add(vis), m.ReceiptHandle
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: received %v, want %v", step, got, want)
			}
		case op < 8:
			if ids := inFlight(); len(ids) > 0 {
				id := ids[rng.IntN(len(ids))]
				if err := q.Delete(ctx, model[id].receipt); err != nil {
					t.Fatal(err)
				}
				delete(model, id)
			}
		case op < 9:
			if ids := inFlight(); len(ids) > 0 {
				id := ids[rng.IntN(len(ids))]
				d := time.Duration(rng.IntN(4)) * time.Second
				if err := q.ChangeVisibility(ctx, model[id].receipt, d); err != nil {
					t.Fatal(err)
				}
				model[id].at, model[id].receipt = clock.Now().Add(d), ""
			}
		default:
			clock.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		}
	}
}
