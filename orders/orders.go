// Package orders is orderledger's application layer: the use cases every
// transport calls (the REST API, the processing saga, the operator's CLI),
// written once over the event store port, and the order codec that turns
// domain events into stored envelopes and back.
//
// Every change to an order goes through one path, (*Service).Update:
//
//	load the stream -> decode (upcasting old schemas) -> fold -> decide ->
//	encode -> append at the loaded version -> on a version conflict, reload
//	and decide again (at most MaxAttempts times)
//
// The API's cancel, the saga's steps and the DLQ tool's checks all take it
// (the DLQ tool only reads, through Load, which is its first half). Place
// is the one use case that creates a stream, with an optional idempotency
// key. History returns an order's audit history in today's schema.
//
// Guarantees:
//   - An append is all or none and carries the version the decision was made
//     on, so a decision is never recorded over state it did not see.
//   - A decider may be called more than once per Update (once per conflict);
//     it must be a function of the state it is given (side effects it has
//     must be idempotent, as the saga's service calls are).
//   - Every envelope returned has StreamID and Version set, whether it was
//     loaded or appended by the call.
//   - The events of an Update carry the order's correlation ID (that of its
//     first event) so every event of one order's flow joins; the caller's
//     correlation ID is used only for an order that has none.
//   - Every append runs in an "eventstore append" span (package
//     internal/tracing), and its events carry that span's traceparent in
//     Metadata.TraceParent, so the work they cause continues the trace of
//     the request or step that appended them. With tracing off and no
//     trace context in ctx there is no span context, and the caller's
//     Metadata.TraceParent is kept.
//
// Errors: a stream that cannot be decoded is ErrCorrupt (domain.Internal);
// a store failure is returned wrapped, with the store's domain code; a
// decider's error is returned as it is; conflicts that outlast MaxAttempts
// are domain.Conflict.
package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/tracing"
)

// MaxAttempts bounds how many times Update loads and decides when other
// writers keep winning the race for the next version.
const MaxAttempts = 5

// ErrCorrupt marks a stored stream that cannot be decoded: an unknown event
// type or schema version, or data that does not fit its type.
var ErrCorrupt = errors.New("orders: stored stream cannot be decoded")

// ErrKeyReused is the answer to a Place whose idempotency key was used
// before with a different order.
var ErrKeyReused = &domain.Error{Code: domain.Invalid, Message: "the Idempotency-Key was already used with a different request",
	Fields: map[string]string{"Idempotency-Key": "was already used with a different request"}}

// Config wires a Service. Store is required.
type Config struct {
	Store eventstore.Store
	Codec *Codec          // nil: NewCodec()
	Clock domain.Clock    // nil: domain.SystemClock
	IDs   domain.IDSource // nil: crypto-random ULIDs
}

// Service runs the order use cases. It is safe for concurrent use.
type Service struct {
	store eventstore.Store
	codec *Codec
	clock domain.Clock
	ids   domain.IDSource
}

// New returns a Service, or an error naming a missing dependency.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("orders: new: Store is required")
	}
	s := &Service{store: cfg.Store, codec: cfg.Codec, clock: cfg.Clock, ids: cfg.IDs}
	if s.codec == nil {
		s.codec = NewCodec()
	}
	if s.clock == nil {
		s.clock = domain.SystemClock
	}
	if s.ids == nil {
		s.ids = domain.NewULIDSource(nil)
	}
	return s, nil
}

// Codec returns the codec the service encodes and decodes with.
func (s *Service) Codec() *Codec { return s.codec }

// Stream is an order as stored: every envelope in version order and the
// state they fold to.
type Stream struct {
	Order  order.Order
	Events []eventstore.Event
	// Appended is how many of Events (the last ones) the call appended.
	Appended int
}

// Decider decides what happens to an order in its current state: the
// events to record (none: nothing changes) or an error, which Update
// returns as it is. For an unknown order it gets the zero Order.
type Decider func(o order.Order) ([]order.Event, error)

// Placement is the result of Place.
type Placement struct {
	// Events are the order's envelopes as of its placement.
	Events []eventstore.Event
	// Replayed is true when the idempotency key had been used for the same
	// order: nothing was appended and Events are the original placement's.
	Replayed bool
}

// Place places a new order. With a non-empty key, a repeated call with the
// same key and the same order answers the first call's placement (Replayed)
// and one with a different order answers ErrKeyReused.
func (s *Service) Place(ctx context.Context, key string, cmd order.Place, meta eventstore.Metadata) (Placement, error) {
	events, err := order.Decide(order.Order{}, cmd)
	if err != nil {
		return Placement{}, err
	}
	now := s.clock().UTC()
	id := s.ids(now)
	actx, span := startAppend(ctx, id, 0, len(events))
	envs, err := s.encode(id, 0, events, now, withTrace(actx, meta))
	if err != nil {
		tracing.End(span, err)
		return Placement{}, err
	}
	var res eventstore.Result
	if key != "" {
		res, err = s.store.AppendIdempotent(actx, key, id, 0, envs...)
	} else {
		res, err = s.store.Append(actx, id, 0, envs...)
	}
	if res.Duplicate {
		span.SetAttributes(attribute.Bool("idempotent_replay", true)) // absent: false
	}
	tracing.End(span, err)
	if err != nil {
		return Placement{}, fmt.Errorf("orders: place: %w", err)
	}
	if !res.Duplicate {
		return Placement{Events: envs}, nil
	}
	// A repeated key: the order as it was right after its placement.
	stored, err := s.store.Load(ctx, res.StreamID, 1)
	if err != nil {
		return Placement{}, fmt.Errorf("orders: place: load original: %w", err)
	}
	if int64(len(stored)) < res.Version {
		return Placement{}, domain.Errorf(domain.Internal, "orders: place: original %s has %d events, placement recorded version %d", res.StreamID, len(stored), res.Version)
	}
	stored = stored[:res.Version]
	evs, err := s.decodeAll(res.StreamID, stored)
	if err != nil {
		return Placement{}, err
	}
	if p, ok := evs[0].(order.Placed); !ok || p != events[0].(order.Placed) {
		return Placement{}, ErrKeyReused
	}
	return Placement{Events: stored, Replayed: true}, nil
}

// Load returns order id as stored. An unknown order has no events and the
// zero Order (Exists false); it is not an error.
func (s *Service) Load(ctx context.Context, id string) (Stream, error) {
	envs, err := s.store.Load(ctx, id, 1)
	if err != nil {
		return Stream{}, fmt.Errorf("orders: load %s: %w", id, err)
	}
	evs, err := s.decodeAll(id, envs)
	if err != nil {
		return Stream{}, err
	}
	return Stream{Order: order.Fold(id, evs...), Events: envs}, nil
}

// Update runs decide on order id's current state and appends the events it
// returns at the version it saw; when another writer appended first, it
// reloads and decides again, at most MaxAttempts times. See the package doc.
func (s *Service) Update(ctx context.Context, id string, meta eventstore.Metadata, decide Decider) (Stream, error) {
	return s.UpdateFrom(ctx, id, Stream{}, meta, decide)
}

// UpdateFrom is Update starting from known, a state of order id that this
// caller read or wrote itself (typically what its previous Update
// returned), instead of loading the stream first: a caller that makes
// several decisions in a row (the saga's steps) reads the stream once, not
// once per step. Nothing is weakened: the append is conditioned on the
// version known was at, so if another writer appended since, the store
// refuses it and the stream is loaded and decided on again, exactly as in
// Update. A zero known (no events) loads as Update does.
func (s *Service) UpdateFrom(ctx context.Context, id string, known Stream, meta eventstore.Metadata, decide Decider) (Stream, error) {
	for attempt := 1; ; attempt++ {
		st := known
		known = Stream{} // a conflict reloads
		if len(st.Events) == 0 || st.Order.ID != id {
			var err error
			if st, err = s.Load(ctx, id); err != nil {
				return Stream{}, err
			}
		}
		events, err := decide(st.Order)
		if err != nil {
			return st, err
		}
		if len(events) == 0 {
			return st, nil
		}
		m := meta
		if len(st.Events) > 0 && st.Events[0].Metadata.CorrelationID != "" {
			m.CorrelationID = st.Events[0].Metadata.CorrelationID
		}
		now := s.clock().UTC()
		actx, span := startAppend(ctx, id, st.Order.Version, len(events))
		news, err := s.encode(id, st.Order.Version, events, now, withTrace(actx, m))
		if err != nil {
			tracing.End(span, err)
			return st, err
		}
		_, err = s.store.Append(actx, id, st.Order.Version, news...)
		tracing.End(span, err)
		var conflict *eventstore.ConflictError
		if errors.As(err, &conflict) {
			if attempt < MaxAttempts {
				continue // another writer was first: decide again on fresh state
			}
			return st, domain.Errorf(domain.Conflict, "the order kept changing while it was being updated (%d attempts); retry", attempt)
		}
		if err != nil {
			return st, fmt.Errorf("orders: append to %s: %w", id, err)
		}
		o := st.Order
		for _, e := range events {
			o = o.Apply(e)
		}
		return Stream{Order: o, Events: append(st.Events, news...), Appended: len(news)}, nil
	}
}

// startAppend starts the span of one append of n events to order id at
// version expected.
func startAppend(ctx context.Context, id string, expected int64, n int) (context.Context, trace.Span) {
	return tracing.Start(ctx, "eventstore append", trace.SpanKindInternal,
		attribute.String("order_id", id), attribute.Int64("expected_version", expected), attribute.Int("events", n))
}

// withTrace returns meta with the traceparent of the span in ctx (the
// append's), so that what the events cause continues the trace. Without a
// span context in ctx (tracing off, no trace to continue), meta's own
// TraceParent is kept.
func withTrace(ctx context.Context, meta eventstore.Metadata) eventstore.Metadata {
	if tp := tracing.TraceParent(ctx); tp != "" {
		meta.TraceParent = tp
	}
	return meta
}

// encode wraps events in envelopes for stream id after version from, with
// fresh event IDs. Version is what the store will assign.
func (s *Service) encode(id string, from int64, events []order.Event, at time.Time, meta eventstore.Metadata) ([]eventstore.Event, error) {
	out := make([]eventstore.Event, len(events))
	for i, e := range events {
		env, err := s.codec.Encode(e, s.ids(at), at, meta)
		if err != nil {
			return nil, err
		}
		env.StreamID, env.Version = id, from+int64(i+1)
		out[i] = env
	}
	return out, nil
}

func (s *Service) decodeAll(id string, envs []eventstore.Event) ([]order.Event, error) {
	evs, err := s.codec.DecodeAll(envs)
	if err != nil {
		return nil, fmt.Errorf("orders: order %s: %w: %w", id, ErrCorrupt, err)
	}
	return evs, nil
}
