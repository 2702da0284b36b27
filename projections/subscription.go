package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync/atomic"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/follow"
)

// Consumer is the checkpoint name of the order read model's subscription.
const Consumer = "projections.orders"

// Subscription drives a Projector from a change feed with the one
// feed-follow loop (eventstore/follow), saving its position after each
// handled batch. After a crash it resumes from the saved checkpoint; the
// events handled again since are duplicates the projector ignores, so the
// read model converges. When the checkpoint store is the projector's read
// model and a CheckpointedWriter (the embedded read model), each batch's
// views and its checkpoint are one atomic write (Projector.HandleBatchAt);
// the follow loop's own save of the checkpoint then finds it in place.
type Subscription struct {
	feed     eventstore.Feed
	cps      eventstore.Checkpoints
	consumer string
	f        *follow.Follower
	// written is the last position a batch wrote with its views (0 when
	// the checkpoint is saved by the follow loop only).
	written atomic.Uint64
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
	s := &Subscription{feed: feed, cps: cps, consumer: consumer}
	handle := follow.Handler(proj.HandleBatch)
	if _, ok := cps.(CheckpointedWriter); ok && same(cps, proj.rm) {
		handle = func(ctx context.Context, evs []eventstore.Event) error {
			last := evs[len(evs)-1].Position
			if err := proj.HandleBatchAt(ctx, evs, consumer, last); err != nil {
				return err
			}
			s.written.Store(last)
			return nil
		}
	}
	f, err := follow.New(follow.Config{
		Feed: feed, Checkpoints: cps, Consumer: consumer, Handle: handle,
		Logger: log, Name: "projections: subscription",
	})
	if err != nil {
		return nil, fmt.Errorf("projections: new subscription: %w", err)
	}
	s.f = f
	return s, nil
}

// same reports whether a and b are the same value (false when their type
// cannot be compared).
func same(a, b any) bool {
	t := reflect.TypeOf(a)
	return t == reflect.TypeOf(b) && t != nil && t.Comparable() && a == b
}

// Run handles the feed until ctx ends, then returns ctx's error. Failures
// are logged and retried with backoff; no event is ever skipped (see
// eventstore/follow).
func (s *Subscription) Run(ctx context.Context) error { return s.f.Run(ctx) }

// Step handles one batch from the saved checkpoint and reports whether
// there was anything to handle.
func (s *Subscription) Step(ctx context.Context) (bool, error) { return s.f.Step(ctx) }

// Position returns the last feed position handled.
func (s *Subscription) Position() uint64 { return max(s.f.Position(), s.written.Load()) }

// Lag returns how many events of the feed the read model has not yet seen
// (for /readyz: ready when the lag is small and Healthy).
func (s *Subscription) Lag(ctx context.Context) (uint64, error) {
	head, err := s.feed.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("projections: lag: %w", err)
	}
	pos := s.f.Position()
	if cp, err := s.cps.Checkpoint(ctx, s.consumer); err == nil {
		pos = max(pos, cp)
	}
	if head <= pos {
		return 0, nil
	}
	return head - pos, nil
}

// Healthy reports whether the last attempt to read or project succeeded.
func (s *Subscription) Healthy() bool { return s.f.Healthy() }
