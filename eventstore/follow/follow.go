// Package follow is the checkpointed feed-follow loop, written once for
// every consumer of an event store's change feed (the publisher, the
// projector's subscription): read a batch after the consumer's checkpoint,
// hand it to the consumer, save the checkpoint, and wait for the feed to
// grow when there is nothing to read.
//
// Guarantees: events are handed over in feed order, a batch at a time; the
// checkpoint is saved only after Handle returned nil for the batch, and
// only moves forward, so no event is ever skipped. Delivery is at least
// once: after a failure (or a crash between Handle and the checkpoint's
// save) the batch is handed over again, so Handle must tolerate duplicates.
// The checkpoint is read before every batch and may be moved ahead by
// someone else (a rebuild that caught up past the consumer); the loop
// then continues from there.
//
// Failures are never fatal to the loop: Run logs each one and waits before
// the next attempt, MinBackoff after the first failure, doubling with each
// further consecutive failure up to MaxBackoff, and back to MinBackoff after
// a success. Run returns only when its context ends, and then returns the
// context's error.
package follow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// Defaults, the one source for every follower.
const (
	// DefaultBatch is how many events are read and handed over at once.
	DefaultBatch = 512
	// DefaultMinBackoff is the wait after a first failure.
	DefaultMinBackoff = 10 * time.Millisecond
	// DefaultMaxBackoff is the longest wait between attempts.
	DefaultMaxBackoff = 5 * time.Second
)

// Handler handles a batch of events, in feed order, with positions
// ascending; the checkpoint moves past them only when it returns nil.
type Handler func(ctx context.Context, events []eventstore.Event) error

// Config wires a Follower.
type Config struct {
	// Feed, Checkpoints, Consumer (the checkpoint's name) and Handle are
	// required.
	Feed        eventstore.Feed
	Checkpoints eventstore.Checkpoints
	Consumer    string
	Handle      Handler
	// Batch is how many events are read at once (0: DefaultBatch).
	Batch int
	// MinBackoff and MaxBackoff bound the wait after failures (0:
	// DefaultMinBackoff and DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// Logger receives one error line per failure (nil: discarded).
	Logger *slog.Logger
	// Name prefixes the log lines and errors, e.g. "publisher" (default
	// "follow").
	Name string
}

// Follower follows a feed for one consumer. Its methods are safe for
// concurrent use, but one Run (or Step) at a time handles the feed.
type Follower struct {
	cfg Config
	pos atomic.Uint64 // last position handled and checkpointed
	ok  atomic.Bool   // the last attempt succeeded
}

// New returns a Follower, or an error naming a missing dependency.
func New(cfg Config) (*Follower, error) {
	if cfg.Feed == nil || cfg.Checkpoints == nil || cfg.Consumer == "" || cfg.Handle == nil {
		return nil, errors.New("follow: new: feed, checkpoints, consumer and handler are required")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		cfg.Name = "follow"
	}
	return &Follower{cfg: cfg}, nil
}

// Run follows the feed until ctx ends, then returns ctx.Err(): it never
// returns otherwise. Failures are logged and retried with backoff (see the
// package doc).
func (f *Follower) Run(ctx context.Context) error {
	backoff := f.cfg.MinBackoff
	pause := func(err error) {
		f.ok.Store(false)
		f.cfg.Logger.Error(f.cfg.Name+": failed, retrying", "consumer", f.cfg.Consumer, "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		backoff = min(2*backoff, f.cfg.MaxBackoff)
	}
	for ctx.Err() == nil {
		moved, err := f.Step(ctx)
		if err != nil {
			if ctx.Err() == nil {
				pause(err)
			}
			continue
		}
		backoff = f.cfg.MinBackoff
		if !moved {
			if err := f.cfg.Feed.WaitFeed(ctx, f.pos.Load()); err != nil && ctx.Err() == nil {
				pause(fmt.Errorf("%s: wait feed: %w", f.cfg.Name, err))
			}
		}
	}
	return ctx.Err()
}

// Step handles one batch after the saved checkpoint and reports whether
// there was anything to handle.
func (f *Follower) Step(ctx context.Context) (bool, error) {
	cp, err := f.cfg.Checkpoints.Checkpoint(ctx, f.cfg.Consumer)
	if err != nil {
		return false, fmt.Errorf("%s: read checkpoint: %w", f.cfg.Name, err)
	}
	// The checkpoint only moves forward, and may have been moved by
	// someone else (a rebuild) past this follower.
	pos := max(cp, f.pos.Load())
	f.pos.Store(pos)
	evs, err := f.cfg.Feed.ReadFeed(ctx, pos, f.cfg.Batch)
	if err != nil {
		return false, fmt.Errorf("%s: read feed after %d: %w", f.cfg.Name, pos, err)
	}
	if len(evs) == 0 {
		f.ok.Store(true)
		return false, nil
	}
	if err := f.cfg.Handle(ctx, evs); err != nil {
		return false, err
	}
	last := evs[len(evs)-1].Position
	if err := f.cfg.Checkpoints.SaveCheckpoint(ctx, f.cfg.Consumer, last); err != nil {
		return false, fmt.Errorf("%s: save checkpoint %d: %w", f.cfg.Name, last, err)
	}
	f.pos.Store(last)
	f.ok.Store(true)
	return true, nil
}

// Position returns the last feed position handled (or the checkpoint read
// before the first batch).
func (f *Follower) Position() uint64 { return f.pos.Load() }

// Healthy reports whether the last attempt to read or handle succeeded.
func (f *Follower) Healthy() bool { return f.ok.Load() }
