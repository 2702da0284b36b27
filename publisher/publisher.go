// Package publisher is the outbox of orderledger, built on the event store's
// change feed: every stored event is read back from the feed and routed to a
// topic. OrderPlaced goes to the order-events topic (which feeds the
// processing queue); OrderCompleted, OrderFailed and OrderCancelled go to the
// order-completed topic (notifications). Nothing else is published.
//
// Because the publisher reads only committed events, a notification can never
// announce an outcome that is not durable. It saves its position in the feed
// (a checkpoint) after each batch it published, so a crash republishes at
// most one batch: delivery is at least once and consumers de-duplicate by the
// event ID (in the body and the event_id attribute).
//
// Publish routes one event and is also what the AWS publisher Lambda calls
// for each DynamoDB Streams record; Run is the feed loop of the embedded
// runtime.
package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/follow"
	"github.com/orderledger/orderledger/internal/logging"
	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/messaging"
)

// DefaultConsumer is the checkpoint name of the publisher.
const DefaultConsumer = "publisher"

// Route names the topic an event type goes to.
type Route int

// Routes.
const (
	None      Route = iota // not published
	Events                 // the order-events topic
	Completed              // the order-completed topic
)

// RouteOf returns where events of eventType are published.
func RouteOf(eventType string) Route {
	switch {
	case eventType == order.TypePlaced:
		return Events
	case order.IsTerminal(eventType):
		return Completed
	}
	return None
}

// Attributes returns the message attributes of an event: event_type,
// order_id and event_id, and traceparent when the event carries one.
func Attributes(ev eventstore.Event) map[string]string {
	a := map[string]string{
		messaging.AttrEventType: ev.Type,
		messaging.AttrOrderID:   ev.StreamID,
		messaging.AttrEventID:   ev.EventID,
	}
	if ev.Metadata.TraceParent != "" {
		a[messaging.AttrTraceParent] = ev.Metadata.TraceParent
	}
	return a
}

// Config wires a Publisher.
type Config struct {
	// Events and Completed are the two topics (both required).
	Events, Completed messaging.Topic
	// Feed and Checkpoints are needed by Run and Lag only.
	Feed        eventstore.Feed
	Checkpoints eventstore.Checkpoints
	// Consumer is the checkpoint name (default DefaultConsumer).
	Consumer string
	// Batch is how many feed events Run reads at a time (default
	// follow.DefaultBatch).
	Batch int
	// Parallel is how many publishes Run has in flight at once (default
	// 16) when a topic cannot batch; with two messaging.BatchTopic topics
	// Run publishes each feed batch with PublishBatch instead.
	Parallel int
	// RetryBackoff is how long Run waits after a first failure, doubled
	// after each further one up to follow.DefaultMaxBackoff (default
	// follow.DefaultMinBackoff).
	RetryBackoff time.Duration
	Logger       *slog.Logger
}

// Publisher routes stored events to topics.
type Publisher struct {
	cfg    Config
	follow *follow.Follower // nil without Feed and Checkpoints
	// batch: both topics are messaging.BatchTopic, so Run publishes each
	// feed batch with PublishBatch (one broker operation and one sync per
	// topic embedded, ten messages a request on SNS).
	batch bool
}

// New returns a Publisher, or an error naming a missing dependency.
func New(cfg Config) (*Publisher, error) {
	if cfg.Events == nil || cfg.Completed == nil {
		return nil, errors.New("publisher: new: Events and Completed topics are required")
	}
	if cfg.Consumer == "" {
		cfg.Consumer = DefaultConsumer
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 16
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	_, be := cfg.Events.(messaging.BatchTopic)
	_, bc := cfg.Completed.(messaging.BatchTopic)
	p := &Publisher{cfg: cfg, batch: be && bc}
	if cfg.Feed != nil && cfg.Checkpoints != nil {
		f, err := follow.New(follow.Config{
			Feed: cfg.Feed, Checkpoints: cfg.Checkpoints, Consumer: cfg.Consumer, Handle: p.publishAll,
			Batch: cfg.Batch, MinBackoff: cfg.RetryBackoff, Logger: log, Name: "publisher",
		})
		if err != nil {
			return nil, fmt.Errorf("publisher: new: %w", err)
		}
		p.follow = f
	}
	return p, nil
}

// Publish routes ev to its topic (or nowhere). The body is ev as JSON.
//
// It continues the trace of ev's Metadata.TraceParent in a producer span
// ("publish OrderPlaced", "notify OrderCompleted": the notification), and
// the message's traceparent attribute is that span's, so that the
// processor and the notifiers continue the trace from there.
func (p *Publisher) Publish(ctx context.Context, ev eventstore.Event) error {
	var topic messaging.Topic
	name := "publish "
	switch RouteOf(ev.Type) {
	case Events:
		topic = p.cfg.Events
	case Completed:
		topic, name = p.cfg.Completed, "notify "
	default:
		return nil
	}
	ctx, span := tracing.Start(logging.WithOrderID(tracing.Continue(ctx, ev.Metadata.TraceParent), ev.StreamID), name+ev.Type,
		trace.SpanKindProducer, attribute.String("order_id", ev.StreamID), attribute.String("event_id", ev.EventID))
	err := p.publish(ctx, topic, ev)
	tracing.End(span, err)
	return err
}

func (p *Publisher) publish(ctx context.Context, topic messaging.Topic, ev eventstore.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("publisher: encode %s: %w", ev.EventID, err)
	}
	attrs := Attributes(ev)
	if tp := tracing.TraceParent(ctx); tp != "" {
		attrs[messaging.AttrTraceParent] = tp
	}
	if _, err := topic.Publish(ctx, body, attrs); err != nil {
		return fmt.Errorf("publisher: publish %s %s: %w", ev.Type, ev.EventID, err)
	}
	return nil
}

// PublishBatch routes evs, in order, publishing to a topic that can batch
// (messaging.BatchTopic: SNS) in batches rather than one request per event.
// It returns how many of evs, counted from the first, are known published:
// len(evs) and nil, or fewer and the error of the first one not known
// published (some after it may have been published: at least once).
func (p *Publisher) PublishBatch(ctx context.Context, evs []eventstore.Event) (int, error) {
	type routed struct {
		index []int // into evs
		msgs  []messaging.Outgoing
		spans []trace.Span // each event's, as in Publish
	}
	byTopic := map[messaging.Topic]*routed{}
	var order []messaging.Topic
	defer func() { // a span not ended below (an encoding error returned early)
		for _, r := range byTopic {
			for _, sp := range r.spans {
				sp.End()
			}
		}
	}()
	for i, ev := range evs {
		var topic messaging.Topic
		name := "publish "
		switch RouteOf(ev.Type) {
		case Events:
			topic = p.cfg.Events
		case Completed:
			topic, name = p.cfg.Completed, "notify "
		default:
			continue
		}
		body, err := json.Marshal(ev)
		if err != nil {
			return i, fmt.Errorf("publisher: encode %s: %w", ev.EventID, err)
		}
		sctx, span := tracing.Start(tracing.Continue(ctx, ev.Metadata.TraceParent), name+ev.Type,
			trace.SpanKindProducer, attribute.String("order_id", ev.StreamID), attribute.String("event_id", ev.EventID))
		attrs := Attributes(ev)
		if tp := tracing.TraceParent(sctx); tp != "" {
			attrs[messaging.AttrTraceParent] = tp
		}
		r := byTopic[topic]
		if r == nil {
			r = &routed{}
			byTopic[topic] = r
			order = append(order, topic)
		}
		r.index = append(r.index, i)
		r.msgs = append(r.msgs, messaging.Outgoing{Body: body, Attrs: attrs})
		r.spans = append(r.spans, span)
	}
	known := len(evs) // how many from the first are known published
	var first error
	for _, topic := range order {
		r := byTopic[topic]
		n, err := len(r.msgs), error(nil)
		if bt, ok := topic.(messaging.BatchTopic); ok {
			n, err = bt.PublishBatch(ctx, r.msgs)
		} else {
			for j, m := range r.msgs {
				if _, err = topic.Publish(ctx, m.Body, m.Attrs); err != nil {
					n = j
					break
				}
			}
		}
		for j, sp := range r.spans {
			if err != nil && j >= n {
				sp.SetStatus(codes.Error, "not known published")
			}
			sp.End()
		}
		r.spans = nil
		if err != nil && r.index[n] < known {
			ev := evs[r.index[n]]
			known, first = r.index[n], fmt.Errorf("publisher: publish %s %s: %w", ev.Type, ev.EventID, err)
		}
	}
	return known, first
}

// Run publishes the feed from the saved checkpoint on with the one
// feed-follow loop (eventstore/follow), waiting for new events, until ctx
// ends; then it returns ctx.Err(). Failures are logged and retried with
// backoff (RetryBackoff, doubling up to follow.DefaultMaxBackoff); the
// checkpoint never passes an event that was not published.
func (p *Publisher) Run(ctx context.Context) error {
	if p.follow == nil {
		return errors.New("publisher: run: Feed and Checkpoints are required")
	}
	return p.follow.Run(ctx)
}

// publishAll publishes evs: with PublishBatch when both topics batch,
// else with up to Parallel publishes at once (message order across orders
// does not matter, and each order's placed and outcome events go to
// different topics), every event tried. It returns the first error; the
// feed follower then retries the batch (at least once).
func (p *Publisher) publishAll(ctx context.Context, evs []eventstore.Event) error {
	if p.batch {
		_, err := p.PublishBatch(ctx, evs)
		return err
	}
	var g errgroup.Group
	g.SetLimit(p.cfg.Parallel)
	for _, ev := range evs {
		if RouteOf(ev.Type) == None {
			continue
		}
		g.Go(func() error { return p.Publish(ctx, ev) })
	}
	return g.Wait()
}

// Lag returns how many feed events are not yet published.
func (p *Publisher) Lag(ctx context.Context) (uint64, error) {
	if p.cfg.Feed == nil || p.cfg.Checkpoints == nil {
		return 0, errors.New("publisher: lag: Feed and Checkpoints are required")
	}
	head, err := p.cfg.Feed.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("publisher: lag: %w", err)
	}
	pos, err := p.cfg.Checkpoints.Checkpoint(ctx, p.cfg.Consumer)
	if err != nil {
		return 0, fmt.Errorf("publisher: lag: %w", err)
	}
	if pos >= head {
		return 0, nil
	}
	return head - pos, nil
}
