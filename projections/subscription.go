package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// Consumer is the checkpoint name of the order read model's subscription.
const Consumer = "projections.orders"

// Subscription drives a Projector from a change feed, saving its position
// after each handled batch. After a crash it resumes from the saved
// checkpoint; the events handled again since are duplicates the projector
// ignores, so the read model converges.
type Subscription struct {
	feed      eventstore.Feed
	cps       eventstore.Checkpoints
	proj      *Projector
	consumer  string
	batchSize int
	log       *slog.Logger

	pos  atomic.Uint64 // last position handled and checkpointed
	head atomic.Uint64 // last head seen
	ok   atomic.Bool   // the last attempt succeeded
}

// NewSubscription returns a subscription of proj to feed saving its position
// in cps under consumer (Consumer when empty). A nil logger discards.
func NewSubscription(feed eventstore.Feed, cps eventstore.Checkpoints, proj *Projector, consumer string, log *slog.Logger) (*Subscription, error) {
	if feed == nil || cps == nil || proj == nil {
		return nil, errors.New("projections: new subscription: feed, checkpoints and projector are required")
	}
	if consumer == "" {
		consumer = Consumer
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Subscription{feed: feed, cps: cps, proj: proj, consumer: consumer, batchSize: 512, log: log}, nil
}

// Run handles the feed until ctx ends, then returns ctx's error. Failures
// are logged and retried with backoff; no event is ever skipped.
func (s *Subscription) Run(ctx context.Context) error {
	backoff := 10 * time.Millisecond
	pause := func(err error) error {
		s.ok.Store(false)
		s.log.Error("projections: subscription", "consumer", s.consumer, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		return nil
	}
	for ctx.Err() == nil {
		moved, err := s.Step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if perr := pause(err); perr != nil {
				return perr
			}
			continue
		}
		backoff = 10 * time.Millisecond
		if !moved {
			if err := s.feed.WaitFeed(ctx, s.pos.Load()); err != nil && ctx.Err() == nil {
				if perr := pause(err); perr != nil {
					return perr
				}
			}
		}
	}
	return ctx.Err()
}

// Step handles one batch from the saved checkpoint and reports whether
// there was anything to handle.
func (s *Subscription) Step(ctx context.Context) (bool, error) {
	cp, err := s.cps.Checkpoint(ctx, s.consumer)
	if err != nil {
		return false, fmt.Errorf("projections: subscription: %w", err)
	}
	// The checkpoint only moves forward, and may have been moved by a
	// rebuild that caught up past this subscription.
	pos := max(cp, s.pos.Load())
	s.pos.Store(pos)
	envs, err := s.feed.ReadFeed(ctx, pos, s.batchSize)
	if err != nil {
		return false, fmt.Errorf("projections: subscription: read feed: %w", err)
	}
	if len(envs) == 0 {
		s.ok.Store(true)
		s.head.Store(max(s.head.Load(), pos))
		return false, nil
	}
	if err := s.proj.HandleBatch(ctx, envs); err != nil {
		return false, err
	}
	last := envs[len(envs)-1].Position
	if err := s.cps.SaveCheckpoint(ctx, s.consumer, last); err != nil {
		return false, fmt.Errorf("projections: subscription: save checkpoint: %w", err)
	}
	s.pos.Store(last)
	s.ok.Store(true)
	return true, nil
}

// Position returns the last feed position handled.
func (s *Subscription) Position() uint64 { return s.pos.Load() }

// Lag returns how many events of the feed the read model has not yet seen
// (for /readyz: ready when the lag is small and Healthy).
func (s *Subscription) Lag(ctx context.Context) (uint64, error) {
	head, err := s.feed.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("projections: lag: %w", err)
	}
	s.head.Store(head)
	pos := s.pos.Load()
	if cp, err := s.cps.Checkpoint(ctx, s.consumer); err == nil {
		pos = max(pos, cp)
	}
	if head <= pos {
		return 0, nil
	}
	return head - pos, nil
}

// Healthy reports whether the last attempt to read or project succeeded.
func (s *Subscription) Healthy() bool { return s.ok.Load() }
