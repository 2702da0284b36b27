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
	streams := groupStreams(envs)
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

// groupStreams splits envs by stream, in order of first appearance.
func groupStreams(envs []eventstore.Event) [][]eventstore.Event {
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
	return streams
}

// HandleBatchAt projects envs as HandleBatch does, and writes every view the
// batch changes together with consumer's checkpoint at pos in one atomic,
// durable write (see CheckpointedWriter, which the projector's read model
// must implement). When a stream fails (a repair the store cannot serve yet), the
// views of the others are still written, without moving the checkpoint, and
// the first error is returned: the batch is handed in again. A conflict
// (another writer moved a view) re-reads the batch's views and tries again.
func (p *Projector) HandleBatchAt(ctx context.Context, envs []eventstore.Event, consumer string, pos uint64) error {
	w, ok := p.rm.(CheckpointedWriter)
	if !ok {
		return errors.New("projections: handle batch: the read model cannot write a batch with its checkpoint")
	}
	if len(envs) == 0 {
		return nil
	}
	streams := groupStreams(envs)
	for attempt := 0; ; attempt++ {
		puts := make([]Put, len(streams))
		changed := make([]bool, len(streams))
		errs := make([]error, len(streams))
		// No shared context: a failed stream does not cancel the others.
		var g errgroup.Group
		g.SetLimit(max(p.Parallel, 1))
		for i, s := range streams {
			g.Go(func() error {
				id := s[0].StreamID
				cur, err := p.rm.Get(ctx, id)
				if err != nil && !errors.Is(err, order.ErrNotFound) {
					errs[i] = fmt.Errorf("projections: project %s: %w", id, err)
					return nil
				}
				next, ok, err := p.advance(ctx, cur, s)
				puts[i], changed[i], errs[i] = Put{Expected: cur.Version, View: next}, ok && err == nil, err
				return nil
			})
		}
		_ = g.Wait()
		var first error
		var write []Put
		for i := range streams {
			if errs[i] != nil && first == nil {
				first = errs[i]
			}
			if changed[i] {
				write = append(write, puts[i])
			}
		}
		cp := consumer
		if first != nil {
			cp = "" // the checkpoint stays until every stream is projected
		}
		if len(write) == 0 && cp == "" {
			return first
		}
		err := w.PutBatch(ctx, write, cp, pos)
		var conflict *ConflictError
		switch {
		case err == nil:
			return first
		case errors.As(err, &conflict) && attempt+1 < maxAttempts:
			continue // another writer moved a view: read the batch again
		default:
			return fmt.Errorf("projections: project batch: %w", err)
		}
	}
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
