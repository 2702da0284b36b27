// Package app is the composition root of the embedded all-in-one runtime
// behind `ledger serve`: one process, one data directory (Layout), no
// external services. Open opens the event store (DIR/events), the read model
// (DIR/views) and the message broker (DIR/queue), starts the projector
// subscription and the pipeline (publisher, order processors, notifiers)
// and builds the REST API; Serve serves it until its context ends, then
// drains the requests in flight; Close lets the workers finish the messages
// in hand and closes every database. The AWS runtime (package aws/awsapp)
// has the same life cycle and, through package internal/httpserver, the
// same HTTP server settings and shutdown log lines.
//
// Every piece is durable before it is acknowledged, so a kill -9 at any
// moment loses nothing: the next start resumes the projector, the publisher
// and the queues from their checkpoints.
//
// The pipeline, the asynchronous half, can also be started alone over any
// event store (the reliability tests do):
//
//	p, err := app.StartPipeline(ctx, app.PipelineConfig{
//		Store: store, Feed: store, Checkpoints: store, // the embedded event store
//		QueueDir: app.Layout(dir).Queue,
//		Payment: simulator, Inventory: simulator,
//		Workers: 32, RetryBackoff: 2 * time.Second,
//		Webhooks: []string{"https://example.com/hook"},
//	})
//	...
//	health, _ := p.Health(ctx) // publisher lag, queue depths, dead letters
//	err = p.Stop(ctx)          // stop receiving, finish messages in hand, close DIR/queue
//
// It opens the messaging broker in QueueDir (package messaging/pebblequeue)
// and declares the same topology as the AWS deployment:
//
//	change feed -> publisher -> topic order-events    -> queue order-processing (filter event_type=OrderPlaced)
//	                                                       -> Workers processors (package processing)
//	                                                       -> after 3 receives: queue order-dlq
//	                         -> topic order-completed -> queue notify-log       -> structured log (messaging/logsink)
//	                                                  -> queue notify-webhook-N -> POST to Webhooks[N] (messaging/webhook)
//
// A failed processing message becomes visible again after RetryBackoff,
// doubling on each receive (the embedded stand-in for the SQS visibility
// timeout); webhook deliveries retry with the same backoff capped at
// MaxWebhookBackoff, forever. The DLQ tools (`ledger dlq list|redrive`)
// open the same broker with OpenBroker while the runtime is stopped.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/console"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/httpserver"
	"github.com/orderledger/orderledger/internal/telemetry"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/pebbleviews"
	"github.com/orderledger/orderledger/services/servicehttp"
	"github.com/orderledger/orderledger/services/sim"
)

// Config configures the runtime. Dir and Addr are required.
type Config struct {
	// Dir is the data directory; it is created if missing.
	Dir string
	// Addr is the API's listen address, e.g. ":8000" ("127.0.0.1:0" picks a port).
	Addr string
	// Token, when set, is required as a bearer token on /orders and /admin.
	Token string
	// Workers is how many orders are processed at once (0: the pipeline
	// default, DefaultWorkers).
	Workers int
	// RetryBackoff is the wait before a failed processing attempt is retried
	// (0: DefaultRetryBackoff).
	RetryBackoff time.Duration
	// Sim configures the payment and inventory simulators.
	Sim sim.Config
	// ServicesURL, when set, sends payment and inventory calls to a
	// service speaking the simulator's HTTP protocol (package
	// services/servicehttp; `ledger simulate` serves one) instead of the
	// in-process simulator, and Sim is unused.
	ServicesURL string
	// NotifyWebhook, when set, receives every order outcome.
	NotifyWebhook string
	// Logger receives JSON logs; nil discards.
	Logger *slog.Logger
	// Started, when set, is called with the listening address once serving.
	Started func(addr string)
	// ShutdownTimeout bounds the drain of requests and of workers on
	// shutdown, each (0: httpserver.DefaultShutdownTimeout, 20s).
	ShutdownTimeout time.Duration
	// Metrics receives the runtime's instrumentation, served on GET
	// /metrics (behind Token when set); nil makes a fresh one.
	Metrics *telemetry.Metrics
}

// MaxReadyLag is how many events the projector or the publisher may trail
// the log by while the runtime still reports ready.
const MaxReadyLag = 10_000

// App is an opened runtime.
type App struct {
	cfg      Config
	log      *slog.Logger
	store    *pebblestore.Store
	views    *pebbleviews.Store
	sub      *projections.Subscription
	pipe     *Pipeline
	rebuilds *projections.Rebuilds
	handler  http.Handler

	cancel context.CancelFunc // stops the subscription and rebuilds
	wg     sync.WaitGroup

	feedStop     chan struct{} // closed when the HTTP drain begins: /feed streams end
	stopFeedOnce sync.Once

	onShutdown func() // test hook: called when the HTTP shutdown begins
}

// Open opens the data directory and starts every worker. Close stops them.
func Open(ctx context.Context, cfg Config) (_ *App, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("app: open: a data directory is required")
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = httpserver.DefaultShutdownTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("app: open: %w", err)
	}
	payment, inventory, err := servicehttp.Services(cfg.ServicesURL, cfg.Sim)
	if err != nil {
		return nil, fmt.Errorf("app: open: %w", err)
	}
	a := &App{cfg: cfg, log: log, feedStop: make(chan struct{})}
	defer func() {
		if err != nil {
			a.closeStores()
		}
	}()
	dirs := Layout(cfg.Dir)
	if a.store, err = pebblestore.Open(dirs.Events); err != nil {
		return nil, fmt.Errorf("app: open events: %w", err)
	}
	if a.views, err = pebbleviews.Open(dirs.Views); err != nil {
		return nil, fmt.Errorf("app: open views: %w", err)
	}
	codec := orders.NewCodec()
	proj, err := projections.NewProjector(a.views, a.store, codec)
	if err != nil {
		return nil, fmt.Errorf("app: open: %w", err)
	}
	// The checkpoint lives with the views, written in the same batch.
	if a.sub, err = projections.NewSubscription(a.store, a.views, proj, "", log); err != nil {
		return nil, fmt.Errorf("app: open: %w", err)
	}
	if a.rebuilds, err = projections.NewRebuilds(a.views.RebuildFunc(a.store, codec)); err != nil {
		return nil, fmt.Errorf("app: open: %w", err)
	}
	var hooks []string
	if cfg.NotifyWebhook != "" {
		hooks = []string{cfg.NotifyWebhook}
	}
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.New()
		a.cfg.Metrics = cfg.Metrics
	}
	store := cfg.Metrics.Store(a.store)
	if a.pipe, err = StartPipeline(ctx, PipelineConfig{
		Store: store, Feed: a.store, Checkpoints: a.store,
		QueueDir: dirs.Queue,
		Payment:  cfg.Metrics.Payment(payment), Inventory: cfg.Metrics.Inventory(inventory),
		Workers: cfg.Workers, RetryBackoff: cfg.RetryBackoff,
		Webhooks: hooks, Logger: log, Observer: cfg.Metrics.Saga(),
	}); err != nil {
		return nil, fmt.Errorf("app: open queue: %w", err)
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		_ = a.sub.Run(runCtx)
	}()
	a.handler = console.Mount(cfg.Metrics.Mount(api.NewRouter(api.Deps{
		Store: store, Views: a.views, Codec: codec,
		Clock: domain.SystemClock, IDs: domain.NewULIDSource(nil),
		Logger: log, Token: cfg.Token, Ready: a.ready,
		Rebuilds:    boundRebuilds{a.rebuilds, runCtx},
		DeadLetters: a.pipe.Broker().DeadLetters(),
		Feed:        a.store, FeedStop: a.feedStop,
	}), cfg.Token))
	a.registerGauges(cfg.Metrics)
	cfg.Metrics.Pebble(map[string]telemetry.PebbleDB{"events": a.store, "views": a.views, "queue": a.pipe.Broker()})
	cfg.Metrics.CommitGroups(func() telemetry.GroupHistogram { return groupHistogram(a.store.GroupStats()) })
	return a, nil
}

// Handler returns the API.
func (a *App) Handler() http.Handler { return a.handler }

// Serve serves the API on cfg.Addr until ctx ends, then shuts the server
// down gracefully: no new connections, requests in flight finish (for at
// most ShutdownTimeout); open GET /feed streams end at once (clients
// reconnect with their last id). The server's settings are
// internal/httpserver's.
func (a *App) Serve(ctx context.Context) error {
	return httpserver.Serve(ctx, httpserver.Config{
		Addr: a.cfg.Addr, Handler: a.handler, Logger: a.log, LogAttrs: []any{"data", a.cfg.Dir},
		ShutdownTimeout: a.cfg.ShutdownTimeout, Started: a.cfg.Started, OnShutdown: a.shutdownBegins,
	})
}

// shutdownBegins ends the /feed streams, which never end by themselves.
func (a *App) shutdownBegins() {
	a.stopFeedOnce.Do(func() { close(a.feedStop) })
	if a.onShutdown != nil {
		a.onShutdown()
	}
}

// Close stops the workers, letting them finish what they hold, and closes
// every database.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if a.pipe != nil {
		a.log.Info("shutting down: draining workers")
		errs = append(errs, a.pipe.Stop(ctx))
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if a.rebuilds != nil {
		errs = append(errs, a.rebuilds.Wait(ctx))
	}
	errs = append(errs, a.closeStores())
	a.log.Info("stopped")
	return errors.Join(errs...)
}

func (a *App) closeStores() error {
	var errs []error
	if a.views != nil {
		errs = append(errs, a.views.Close())
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
	}
	return errors.Join(errs...)
}

// Run opens the runtime, serves until ctx ends and closes it.
func Run(ctx context.Context, cfg Config) error {
	a, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	serveErr := a.Serve(ctx)
	return errors.Join(serveErr, a.Close())
}

// ready reports the readiness checks: the store answers, the projector and
// the publisher keep up, the queues answer.
func (a *App) ready(ctx context.Context) []api.Check {
	var checks []api.Check
	if _, err := a.store.Head(ctx); err != nil {
		checks = append(checks, api.Check{Name: "event store", OK: false, Detail: "not answering"})
	} else {
		checks = append(checks, api.Check{Name: "event store", OK: true})
	}
	lag, err := a.sub.Lag(ctx)
	switch {
	case err != nil || !a.sub.Healthy():
		checks = append(checks, api.Check{Name: "projector", OK: false, Detail: "failing; retrying"})
	default:
		checks = append(checks, api.Check{Name: "projector", OK: lag <= MaxReadyLag, Detail: fmt.Sprintf("%d events behind", lag)})
	}
	h, err := a.pipe.Health(ctx)
	if err != nil {
		checks = append(checks, api.Check{Name: "pipeline", OK: false, Detail: "not answering"})
	} else {
		checks = append(checks, api.Check{Name: "pipeline", OK: h.PublisherLag <= MaxReadyLag,
			Detail: fmt.Sprintf("publisher %d events behind; processing %d queued, %d in flight; %d dead letters",
				h.PublisherLag, h.Processing.Visible, h.Processing.InFlight, h.DeadLetters)})
	}
	return checks
}

// boundRebuilds runs rebuilds for the lifetime of the runtime, not of the
// request that started them.
type boundRebuilds struct {
	*projections.Rebuilds
	ctx context.Context
}

func (b boundRebuilds) Start(context.Context) (projections.RebuildStatus, error) {
	return b.Rebuilds.Start(b.ctx)
}

// Feed returns the event store's change feed, for observers in the same
// process (the end-to-end benchmark follows it to see orders finish).
func (a *App) Feed() eventstore.Feed { return a.store }

// groupHistogram is the event store's commit groups as the metrics count
// them: cumulative buckets of 1, 2, 4 .. 1,024 events (fixed, so that every
// scrape has the same series); larger groups count in +Inf only.
func groupHistogram(st pebblestore.GroupStats) telemetry.GroupHistogram {
	h := telemetry.GroupHistogram{Count: st.Groups, Sum: st.Events, Buckets: make(map[float64]uint64, 11)}
	var cum uint64
	for i, n := range st.Buckets[:11] {
		cum += n
		h.Buckets[float64(pebblestore.GroupBuckets[i])] = cum
	}
	return h
}
