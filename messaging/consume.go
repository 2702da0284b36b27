package messaging

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Handler handles one message: nil deletes it, an error makes it visible
// again after the consumer's backoff.
type Handler func(ctx context.Context, msg Message) error

// ConsumeOptions tune Consume.
type ConsumeOptions struct {
	// Workers is how many messages are handled at once (0: 1).
	Workers int
	// Wait is the long-polling wait of each receive (0: 1s).
	Wait time.Duration
	// Backoff returns how long a failed message stays invisible before its
	// next delivery, given its receive count (nil: Exponential(1s, 5m)).
	Backoff func(receiveCount int) time.Duration
	// Logger logs failures (nil: slog.Default()).
	Logger *slog.Logger
	// Name names the consumer in log lines.
	Name string
}

// Exponential returns a backoff of base doubling with every receive, capped
// at ceiling: base, 2*base, 4*base...
func Exponential(base, ceiling time.Duration) func(int) time.Duration {
	return func(n int) time.Duration {
		d := base
		for i := 1; i < n && d < ceiling; i++ {
			d *= 2
		}
		return min(d, ceiling)
	}
}

// Consume receives from q and hands every message to h with opts.Workers
// workers until ctx ends, then lets the messages in hand finish (with a
// context that is not cancelled) and returns. A message h fails is made
// visible again after opts.Backoff; a message whose ack fails is simply
// delivered again (handlers are idempotent). Consume returns nil after ctx
// ends, or the first receive error that is not a cancellation once the queue
// is closed.
func Consume(ctx context.Context, q Queue, h Handler, opts ConsumeOptions) error {
	workers := max(opts.Workers, 1)
	wait := opts.Wait
	if wait <= 0 {
		wait = time.Second
	}
	backoff := opts.Backoff
	if backoff == nil {
		backoff = Exponential(time.Second, 5*time.Minute)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	work := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				msgs, err := q.Receive(ctx, 1, wait)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					if errors.Is(err, ErrClosed) {
						errc <- err
						return
					}
					log.Error("messaging: receive failed", "consumer", opts.Name, "err", err)
					sleep(ctx, time.Second)
					continue
				}
				for _, m := range msgs {
					handle(work, q, h, m, backoff, log, opts.Name)
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func handle(ctx context.Context, q Queue, h Handler, m Message, backoff func(int) time.Duration, log *slog.Logger, name string) {
	if err := h(ctx, m); err != nil {
		d := backoff(m.ReceiveCount)
		log.Warn("messaging: handler failed, will retry", "consumer", name, "message_id", m.ID,
			"receive_count", m.ReceiveCount, "retry_in", d, "err", err)
		if err := q.ChangeVisibility(ctx, m.ReceiptHandle, d); err != nil {
			log.Error("messaging: change visibility failed", "consumer", name, "message_id", m.ID, "err", err)
		}
		return
	}
	if err := q.Delete(ctx, m.ReceiptHandle); err != nil {
		log.Error("messaging: delete failed; the message will be delivered again", "consumer", name, "message_id", m.ID, "err", err)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
