package messaging_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/messaging/pebblequeue"
)

func TestExponential(t *testing.T) {
	t.Parallel()
	b := messaging.Exponential(time.Second, 5*time.Minute)
	for _, c := range []struct {
		n    int
		want time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{9, 256 * time.Second}, {10, 5 * time.Minute}, {1000, 5 * time.Minute},
	} {
		if got := b(c.n); got != c.want {
			t.Errorf("Exponential(1s, 5m)(%d) = %v, want %v", c.n, got, c.want)
		}
	}
}

// queue opens a real queue on pebble in a temporary directory.
func queue(t *testing.T) (*pebblequeue.Broker, *pebblequeue.Queue) {
	t.Helper()
	b, err := pebblequeue.Open(t.TempDir(), pebblequeue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	q, err := b.Queue("work", pebblequeue.QueueConfig{VisibilityTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return b, q
}

// wantEmpty fails t when q still holds a visible message.
func wantEmpty(ctx context.Context, t *testing.T, q *pebblequeue.Queue, why string) {
	t.Helper()
	left, err := q.Receive(ctx, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d messages left in the queue, want 0 (%s)", len(left), why)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestConsumeDeletesHandledAndRetriesFailedWithBackoff(t *testing.T) {
	t.Parallel()
	_, q := queue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, body := range []string{"ok", "flaky"} {
		if _, err := q.Send(ctx, []byte(body), nil); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var backoffs []int            // receive counts Backoff was asked about
	handled := map[string][]int{} // body -> receive counts seen
	run, stop := context.WithCancel(ctx)
	h := func(_ context.Context, m messaging.Message) error {
		mu.Lock()
		defer mu.Unlock()
		handled[string(m.Body)] = append(handled[string(m.Body)], m.ReceiveCount)
		if string(m.Body) == "flaky" && m.ReceiveCount < 3 {
			return errors.New("not yet")
		}
		if len(handled["ok"]) > 0 && len(handled["flaky"]) == 3 {
			stop()
		}
		return nil
	}
	err := messaging.Consume(run, q, h, messaging.ConsumeOptions{
		Workers: 2, Wait: 50 * time.Millisecond, Logger: quiet(), Name: "test",
		Backoff: func(n int) time.Duration {
			mu.Lock()
			backoffs = append(backoffs, n)
			mu.Unlock()
			return 0
		},
	})
	if err != nil {
		t.Fatalf("Consume = %v, want nil after its context ended", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Consume did not finish in time: handled %v", handled)
	}
	if got := handled["ok"]; len(got) != 1 || got[0] != 1 {
		t.Errorf(`"ok" handled at receive counts %v, want [1] (deleted after its first success)`, got)
	}
	if got := handled["flaky"]; len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf(`"flaky" handled at receive counts %v, want [1 2 3]`, got)
	}
	if len(backoffs) != 2 || backoffs[0] != 1 || backoffs[1] != 2 {
		t.Errorf("Backoff asked for receive counts %v, want [1 2] (once per failure)", backoffs)
	}
	wantEmpty(ctx, t, q, "both deleted once handled")
}

func TestConsumeFinishesTheMessageInHandAfterCancel(t *testing.T) {
	t.Parallel()
	_, q := queue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := q.Send(ctx, []byte("slow"), nil); err != nil {
		t.Fatal(err)
	}
	run, stop := context.WithCancel(ctx)
	var handlerCtxErr error
	h := func(hctx context.Context, m messaging.Message) error {
		stop() // the consumer is told to stop while this message is in hand
		time.Sleep(20 * time.Millisecond)
		handlerCtxErr = hctx.Err()
		return nil
	}
	if err := messaging.Consume(run, q, h, messaging.ConsumeOptions{Wait: 50 * time.Millisecond, Logger: quiet()}); err != nil {
		t.Fatalf("Consume = %v, want nil", err)
	}
	if handlerCtxErr != nil {
		t.Errorf("the handler's context ended (%v) while the message was in hand; want it to finish", handlerCtxErr)
	}
	wantEmpty(ctx, t, q, "the message in hand is deleted after it finished")
}

func TestConsumeReturnsErrClosedWhenTheQueueCloses(t *testing.T) {
	t.Parallel()
	b, q := queue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- messaging.Consume(ctx, q, func(context.Context, messaging.Message) error { return nil },
			messaging.ConsumeOptions{Workers: 3, Wait: 20 * time.Millisecond, Logger: quiet()})
	}()
	time.Sleep(50 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, messaging.ErrClosed) {
			t.Fatalf("Consume = %v, want messaging.ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Consume did not return after the queue closed")
	}
}
