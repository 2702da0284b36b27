package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/messaging/logsink"
	"github.com/orderledger/orderledger/messaging/pebblequeue"
	"github.com/orderledger/orderledger/messaging/webhook"
	"github.com/orderledger/orderledger/processing"
	"github.com/orderledger/orderledger/publisher"
	"github.com/orderledger/orderledger/services"
)

// Names of the embedded topics and queues.
const (
	EventsTopic     = "order-events"
	CompletedTopic  = "order-completed"
	ProcessingQueue = "order-processing"
	DeadLetterQueue = "order-dlq"
	LogQueue        = "notify-log"
	WebhookQueue    = "notify-webhook-" // + index
)

// Defaults.
const (
	// DefaultWorkers is the number of processing workers. A worker spends
	// most of an order waiting for durable writes in series (receive, two
	// appends, delete), and concurrent writers share fsyncs, so throughput
	// grows with workers until the disk or the CPU is busy; 32 is where the
	// end-to-end figures stop growing on 2 cores (BENCHMARKS.md, "End to end").
	DefaultWorkers = 32
	// DefaultRetryBackoff is the first wait before a failed processing
	// attempt is retried: the default of `ledger serve --retry-backoff`, of
	// Config.RetryBackoff and of PipelineConfig.RetryBackoff.
	DefaultRetryBackoff = 2 * time.Second
	// LogWorkers consume the notify-log queue. Each notification costs a
	// receive and a delete, two durable writes in series, so one worker
	// keeps up with a few hundred outcomes a second, less than the
	// processors finish; with a few, their writes share fsyncs. The lines
	// are independent, so their order does not matter.
	LogWorkers = 4
	// MaxWebhookBackoff caps the wait between webhook attempts.
	MaxWebhookBackoff = 5 * time.Minute
)

// PipelineConfig wires the pipeline.
type PipelineConfig struct {
	// Store, Feed and Checkpoints: the event store (the embedded store is all three).
	Store       eventstore.Store
	Feed        eventstore.Feed
	Checkpoints eventstore.Checkpoints
	// QueueDir is the broker's directory (DIR/queue).
	QueueDir string
	// Payment and Inventory are the services (a sim.Simulator or a servicehttp.Client).
	Payment   services.Payment
	Inventory services.Inventory
	// Workers is how many processing messages are handled at once (0: DefaultWorkers).
	Workers int
	// RetryBackoff is the first wait before a failed message is retried (0: DefaultRetryBackoff).
	RetryBackoff time.Duration
	// Webhooks are URLs notified of every outcome.
	Webhooks []string
	// WebhookClient is the HTTP client for webhooks (nil: webhook.DefaultTimeout).
	WebhookClient *http.Client
	// DisableLog turns the structured-log subscription off.
	DisableLog bool
	Logger     *slog.Logger
	// Observer is told what the saga does (the runtime's metrics); nil: nothing.
	Observer processing.Observer
	Clock    domain.Clock
	IDs      domain.IDSource
}

// Broker is the opened broker with the declared topology.
type Broker struct {
	*pebblequeue.Broker
	Events, Completed *pebblequeue.Topic
	Processing, DLQ   *pebblequeue.Queue
	Log               *pebblequeue.Queue
	Webhooks          []*pebblequeue.Queue
}

// OpenBroker opens the broker in dir and declares the topology; webhooks is
// how many webhook outbox queues to declare.
func OpenBroker(dir string, retryBackoff time.Duration, webhooks int, withLog bool) (*Broker, error) {
	if dir == "" {
		return nil, errors.New("app: QueueDir is required")
	}
	b, err := pebblequeue.Open(dir, pebblequeue.Options{})
	if err != nil {
		return nil, err
	}
	br, err := declare(b, retryBackoff, webhooks, withLog)
	if err != nil {
		b.Close()
		return nil, err
	}
	return br, nil
}

func declare(b *pebblequeue.Broker, retryBackoff time.Duration, webhooks int, withLog bool) (*Broker, error) {
	br := &Broker{Broker: b}
	var err error
	must := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	must(func() (e error) { br.Events, e = b.Topic(EventsTopic); return })
	must(func() (e error) { br.Completed, e = b.Topic(CompletedTopic); return })
	must(func() (e error) { br.DLQ, e = b.Queue(DeadLetterQueue, pebblequeue.QueueConfig{}); return })
	// The visibility timeout covers a worker that died mid-message; failed
	// messages come back sooner via ChangeVisibility(backoff).
	vis := max(pebblequeue.DefaultVisibilityTimeout, 4*retryBackoff)
	must(func() (e error) {
		br.Processing, e = b.Queue(ProcessingQueue, pebblequeue.QueueConfig{VisibilityTimeout: vis, DeadLetter: br.DLQ, MaxReceiveCount: messaging.MaxReceiveCount})
		return
	})
	must(func() error {
		return br.Events.Subscribe(br.Processing, messaging.Filter{messaging.AttrEventType: {"OrderPlaced"}})
	})
	if withLog {
		must(func() (e error) {
			br.Log, e = b.Queue(LogQueue, pebblequeue.QueueConfig{VisibilityTimeout: vis})
			return
		})
		must(func() error { return br.Completed.Subscribe(br.Log, nil) })
	}
	for i := range webhooks {
		must(func() error {
			q, e := b.Queue(fmt.Sprint(WebhookQueue, i), pebblequeue.QueueConfig{VisibilityTimeout: vis})
			if e != nil {
				return e
			}
			br.Webhooks = append(br.Webhooks, q)
			return br.Completed.Subscribe(q, nil)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("app: declare topology: %w", err)
	}
	return br, nil
}

// Pipeline is the running publisher, processors and notifiers.
type Pipeline struct {
	broker    *Broker
	publisher *publisher.Publisher
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	stopOnce  sync.Once
	stopErr   error
}

// StartPipeline opens the broker and starts every worker; they run until Stop.
func StartPipeline(ctx context.Context, cfg PipelineConfig) (*Pipeline, error) {
	switch {
	case cfg.Store == nil || cfg.Feed == nil || cfg.Checkpoints == nil:
		return nil, errors.New("app: Store, Feed and Checkpoints are required")
	case cfg.Payment == nil || cfg.Inventory == nil:
		return nil, errors.New("app: Payment and Inventory are required")
	case cfg.Workers < 0 || cfg.RetryBackoff < 0:
		return nil, errors.New("app: Workers and RetryBackoff must not be negative")
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	var deliverers []*webhook.Deliverer
	for _, u := range cfg.Webhooks {
		d, err := webhook.New(u, cfg.WebhookClient)
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		deliverers = append(deliverers, d)
	}
	proc, err := processing.New(processing.Config{Store: cfg.Store, Payment: cfg.Payment, Inventory: cfg.Inventory,
		Clock: cfg.Clock, IDs: cfg.IDs, Logger: log, Observer: cfg.Observer})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	br, err := OpenBroker(cfg.QueueDir, cfg.RetryBackoff, len(deliverers), !cfg.DisableLog)
	if err != nil {
		return nil, err
	}
	pub, err := publisher.New(publisher.Config{Events: br.Events, Completed: br.Completed, Feed: cfg.Feed,
		Checkpoints: cfg.Checkpoints, RetryBackoff: cfg.RetryBackoff, Logger: log})
	if err != nil {
		br.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &Pipeline{broker: br, publisher: pub, cancel: cancel}
	wait := min(time.Second, max(cfg.RetryBackoff, 50*time.Millisecond))
	p.goRun(func() { pub.Run(runCtx) })
	p.goRun(func() {
		messaging.Consume(runCtx, br.Processing, proc.Handle, messaging.ConsumeOptions{Workers: cfg.Workers, Wait: wait,
			Backoff: messaging.Exponential(cfg.RetryBackoff, 16*cfg.RetryBackoff), Logger: log, Name: ProcessingQueue})
	})
	if br.Log != nil {
		p.goRun(func() {
			messaging.Consume(runCtx, br.Log, logsink.Handler(log), messaging.ConsumeOptions{Workers: LogWorkers,
				Wait: wait, Logger: log, Name: LogQueue})
		})
	}
	for i, d := range deliverers {
		q := br.Webhooks[i]
		p.goRun(func() {
			messaging.Consume(runCtx, q, d.Handle, messaging.ConsumeOptions{Wait: wait,
				Backoff: messaging.Exponential(cfg.RetryBackoff, MaxWebhookBackoff), Logger: log, Name: q.Name()})
		})
	}
	return p, nil
}

func (p *Pipeline) goRun(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// Broker returns the broker, for inspection (tests, health pages).
func (p *Pipeline) Broker() *Broker { return p.broker }

// Stop stops receiving, waits for the messages in hand to finish (or ctx to
// end) and closes the broker. Messages not finished stay in their queues and
// are delivered again after the next start. Stop is safe to call twice.
func (p *Pipeline) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		p.cancel()
		done := make(chan struct{})
		go func() { p.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			p.stopErr = fmt.Errorf("app: stop: workers still busy: %w", ctx.Err())
		}
		if err := p.broker.Close(); err != nil && p.stopErr == nil {
			p.stopErr = err
		}
	})
	return p.stopErr
}

// Health is a snapshot of the runtime's backlog.
type Health struct {
	// PublisherLag is how many stored events are not yet published.
	PublisherLag uint64 `json:"publisher_lag"`
	// Processing counts the processing queue (visible and in flight).
	Processing pebblequeue.Stats `json:"processing"`
	// DeadLetters is how many messages wait in the dead-letter queue.
	DeadLetters int `json:"dead_letters"`
	// Webhooks counts each webhook outbox, in PipelineConfig.Webhooks order.
	Webhooks []pebblequeue.Stats `json:"webhooks,omitempty"`
}

// Idle reports whether nothing is waiting anywhere (dead letters aside).
func (h Health) Idle() bool {
	if h.PublisherLag > 0 || h.Processing.Visible+h.Processing.InFlight > 0 {
		return false
	}
	for _, w := range h.Webhooks {
		if w.Visible+w.InFlight > 0 {
			return false
		}
	}
	return true
}

// Health returns the backlog.
func (p *Pipeline) Health(ctx context.Context) (Health, error) {
	var h Health
	var err error
	if h.PublisherLag, err = p.publisher.Lag(ctx); err != nil {
		return h, err
	}
	if h.Processing, err = p.broker.Processing.Stats(ctx); err != nil {
		return h, err
	}
	dlq, err := p.broker.DLQ.Stats(ctx)
	if err != nil {
		return h, err
	}
	h.DeadLetters = dlq.Visible + dlq.InFlight
	for _, q := range p.broker.Webhooks {
		s, err := q.Stats(ctx)
		if err != nil {
			return h, err
		}
		h.Webhooks = append(h.Webhooks, s)
	}
	return h, nil
}
