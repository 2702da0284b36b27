package pebblequeue

import (
	"context"
	"testing"
	"time"
)

// TestIdleReceivesDoNotScan: once a receive has found that the next key of
// the index lies in the future, further receives before that time take
// nothing and scan nothing (a send wakes every waiting receiver; all but
// the first used to scan for nothing); a send, and the visibility timeout,
// make them scan and receive again.
func TestIdleReceivesDoNotScan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	b, err := Open(t.TempDir(), Options{Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q, err := b.Queue("q", QueueConfig{VisibilityTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	receive := func() int {
		t.Helper()
		msgs, err := q.Receive(ctx, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(msgs)
	}
	scans := func() int { b.mu.Lock(); defer b.mu.Unlock(); return q.scans }
	if _, err := q.Send(ctx, []byte("a"), nil); err != nil {
		t.Fatal(err)
	}
	if receive() != 1 {
		t.Fatal("the message sent was not received")
	}
	if receive() != 0 { // scans and finds the in-flight message ahead
		t.Fatal("an in-flight message was received")
	}
	before := scans()
	for range 10 {
		if receive() != 0 {
			t.Fatal("an in-flight message was received")
		}
	}
	if n := scans() - before; n != 0 {
		t.Fatalf("10 receives with nothing due scanned %d times, want 0", n)
	}
	if _, err := q.Send(ctx, []byte("b"), nil); err != nil {
		t.Fatal(err)
	}
	if receive() != 1 {
		t.Fatal("a message sent after idle receives was not received")
	}
	now = now.Add(11 * time.Second) // a's visibility timeout passes
	if msgs, err := q.Receive(ctx, 1, 0); err != nil || len(msgs) != 1 || string(msgs[0].Body) != "a" || msgs[0].ReceiveCount != 2 {
		t.Fatalf("after the visibility timeout: %+v, %v; want a, received twice", msgs, err)
	}
}
