package projections

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/orders"
)

// Projector keeps a ReadModel up to date from events delivered at least once
// and in any order across streams (in order within a stream is not assumed
// either). Event v of a stream is applied only when the stored view is at
// v-1; an event at or below the stored version is a duplicate and ignored; an
// event further ahead means deliveries were missed or reordered, and the
// projector repairs the view by loading the missing events from the store
// and folding them. Whatever the delivery, the view converges to the fold of
// the stream.
type Projector struct {
	rm    ReadModel
	store eventstore.Store
	codec *orders.Codec
	// Parallel is how many streams HandleBatch works on at once.
	Parallel int
}

// maxAttempts bounds the retries of one stream after conflicting writers.
const maxAttempts = 16

// NewProjector returns a projector writing to rm, repairing gaps from store.
func NewProjector(rm ReadModel, store eventstore.Store, codec *orders.Codec) (*Projector, error) {
	if rm == nil || store == nil || codec == nil {
		return nil, errors.New("projections: new projector: read model, store and codec are required")
	}
	return &Projector{rm: rm, store: store, codec: codec, Parallel: 16}, nil
}

// Handle projects one event.
func (p *Projector) Handle(ctx context.Context, env eventstore.Event) error {
	return p.handleStream(ctx, []eventstore.Event{env})
}

// HandleBatch projects envs, grouping them by stream: each stream's view is
// read and written once, and up to p.Parallel streams are handled at once
// (so adapters that group concurrent commits can). It returns the first error
// after trying every stream; a stream that failed can be handed in again.
func (p *Projector) HandleBatch(ctx context.Context, envs []eventstore.Event) error {
	if len(envs) == 0 {
		return nil
	}
	var streams [][]eventstore.Event
	idx := map[string]int{}
	for _, env := range envs {
		i, ok := idx[env.StreamID]
		if !ok {
			i = len(streams)
			idx[env.StreamID] = i
			streams = append(streams, nil)
		}
		streams[i] = append(streams[i], env)
	}
	if len(streams) == 1 || p.Parallel <= 1 {
		var first error
		for _, s := range streams {
			if err := p.handleStream(ctx, s); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	// No shared context: a failed stream does not cancel the others.
	var g errgroup.Group
	g.SetLimit(p.Parallel)
	for _, s := range streams {
		g.Go(func() error { return p.handleStream(ctx, s) })
	}
	return g.Wait()
}

// handleStream projects events of one stream, in any order, duplicates allowed.
func (p *Projector) handleStream(ctx context.Context, envs []eventstore.Event) error {
	id := envs[0].StreamID
	for attempt := 0; ; attempt++ {
		cur, err := p.rm.Get(ctx, id)
		if err != nil && !errors.Is(err, order.ErrNotFound) {
			return fmt.Errorf("projections: project %s: %w", id, err)
		}
		next, changed, err := p.advance(ctx, cur, envs)
		if err != nil || !changed {
			return err
		}
		err = p.rm.Put(ctx, cur.Version, next)
		var conflict *ConflictError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &conflict) && attempt+1 < maxAttempts:
			continue // another writer moved the view: read it again
		default:
			return fmt.Errorf("projections: project %s: %w", id, err)
		}
	}
}

// advance applies envs to cur in version order, skipping duplicates, and
// loads the stream from the store when they leave a gap.
func (p *Projector) advance(ctx context.Context, cur View, envs []eventstore.Event) (View, bool, error) {
	next := cur
	byVersion := make(map[int64]eventstore.Event, len(envs))
	var top int64
	for _, env := range envs {
		if env.Version > cur.Version {
			byVersion[env.Version] = env
			top = max(top, env.Version)
		}
	}
	for next.Version < top {
		env, ok := byVersion[next.Version+1]
		if !ok {
			// A gap: read-repair from the log, from what the view lacks.
			loaded, err := p.store.Load(ctx, envs[0].StreamID, next.Version+1)
			if err != nil {
				return cur, false, fmt.Errorf("projections: repair %s: %w", envs[0].StreamID, err)
			}
			if len(loaded) == 0 || loaded[0].Version != next.Version+1 {
				return cur, false, domain.Errorf(domain.Unavailable, "projections: repair %s: the store has no version %d yet", envs[0].StreamID, next.Version+1)
			}
			v, err := FoldOnto(p.codec, next, loaded)
			if err != nil {
				return cur, false, err
			}
			return v, v.Version > cur.Version, nil
		}
		var err error
		if next, err = next.ApplyEnvelope(p.codec, env); err != nil {
			return cur, false, err
		}
	}
	return next, next.Version > cur.Version, nil
}
