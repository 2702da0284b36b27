// Package awsapp is the composition root of the AWS runtime behind `ledger
// serve --backend aws`, which the container image runs on ECS: the REST API
// on the DynamoDB stores (event log and read table of one environment), and,
// with LocalMappings, local event-source mappings (package aws/localmapping)
// that call the Lambda handlers in this process: projector and publisher on
// the events table's stream (a record that keeps failing is given up after
// its retries and its failure record sent to the stream failures queue, as
// deployed), the order processor on the processing queue.
// Where the deployed Lambdas consume the stream and the queue (the ECS
// service Terraform deploys), LocalMappings is off and only the API runs.
//
// It has the life cycle of the embedded runtime (package app): Open resolves
// the environment's resources and starts the mappings, Serve serves the API
// until its context ends and drains the requests in flight (package
// internal/httpserver: the same timeouts and log lines), Close stops the
// mappings, letting them finish the batch in hand, and Run does all three.
//
// Open fails when a resource of the environment is missing, saying to run
// `ledger aws bootstrap` or apply the Terraform; it creates nothing.
//
// POST /admin/projections/rebuild starts a rebuild of the read table in
// place (projections/dynamoviews: a parallel scan of the events table,
// each order folded and written with the projector's version fence,
// resumable from its checkpoints) in the background of the runtime, and
// GET reports it; the read table keeps serving meanwhile. Close stops a
// running rebuild, which the next one resumes.
//
// GET /readyz answers 200 while the events table, the read table and the
// processing queue each answer a cheap call (DescribeTable,
// GetQueueAttributes; concurrently, within ReadyTimeout each), and 503
// (application/problem+json with the checks, as on the embedded runtime)
// as soon as one does not. A store outage answers 503 on every other route
// too (the DynamoDB adapters report it as domain.Unavailable).
package awsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/aws/lambdas"
	"github.com/orderledger/orderledger/aws/localmapping"
	"github.com/orderledger/orderledger/console"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/httpserver"
	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/internal/telemetry"
	"github.com/orderledger/orderledger/processing"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/dynamoviews"
	"github.com/orderledger/orderledger/services/servicehttp"
	"github.com/orderledger/orderledger/services/sim"
)

// DefaultWorkers is the default number of processing queue pollers: each
// is a local SQS poller, and Lambda does the scaling where it is deployed.
const DefaultWorkers = 4

// Config configures the runtime. AWS and Addr are required.
type Config struct {
	// AWS is the SDK configuration every client is built from
	// (awsconfig.Load: the standard chain, AWS_ENDPOINT_URL for an emulator).
	AWS aws.Config
	// Env is the environment prefix of the resource names (empty:
	// resources.DefaultEnv).
	Env string
	// OrdersTable, when set, is the read table instead of <env>-orders
	// (LEDGER_ORDERS_TABLE: a blue/green rebuild's table).
	OrdersTable string
	// Addr is the API's listen address, e.g. ":8000" ("127.0.0.1:0" picks a port).
	Addr string
	// Token, when set, is required as a bearer token on /orders and /admin.
	Token string
	// LocalMappings runs the projector, the publisher and the processors in
	// this process; off where the deployed Lambdas do.
	LocalMappings bool
	// Workers is how many processing queue pollers run with LocalMappings
	// (0: DefaultWorkers).
	Workers int
	// RetryBackoff, when positive, is how long a failed processing message
	// stays invisible before it is retried; zero leaves the queue's
	// visibility timeout in charge, as with the deployed Lambda.
	RetryBackoff time.Duration
	// Sim configures the payment and inventory simulators the processors call.
	Sim sim.Config
	// ServicesURL, when set, sends payment and inventory calls to a service
	// speaking the simulator's HTTP protocol instead (Sim is then unused).
	ServicesURL string
	// Logger receives JSON logs; nil discards.
	Logger *slog.Logger
	// Started, when set, is called with the listening address once serving.
	Started func(addr string)
	// ShutdownTimeout bounds the drain of requests and of the mappings on
	// shutdown, each (0: httpserver.DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// ReadyTimeout bounds each readiness check of GET /readyz (0:
	// DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// Metrics receives the runtime's instrumentation, served on GET
	// /metrics (behind Token when set); nil makes a fresh one.
	Metrics *telemetry.Metrics
}

// App is an opened runtime.
type App struct {
	cfg          Config
	log          *slog.Logger
	readyTimeout time.Duration
	deps         *lambdas.Deps
	rep          bootstrap.Report
	handler      http.Handler
	store        eventstore.Store // d.Store, instrumented

	cancel context.CancelFunc // stops the mappings
	wg     sync.WaitGroup

	rebuilds     *projections.Rebuilds
	stopRebuilds context.CancelFunc
	rebuildsCtx  context.Context
}

// Open resolves the environment's resources, builds the API and, with
// LocalMappings, starts the mappings. Close stops them.
func Open(ctx context.Context, cfg Config) (*App, error) {
	switch {
	case cfg.Addr == "":
		return nil, errors.New("aws/awsapp: open: a listen address is required")
	case cfg.Workers < 0 || cfg.RetryBackoff < 0:
		return nil, errors.New("aws/awsapp: open: Workers and RetryBackoff must not be negative")
	}
	if cfg.Env == "" {
		cfg.Env = resources.DefaultEnv
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = httpserver.DefaultShutdownTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := lambdas.NewDepsFor(cfg.AWS, resources.For(cfg.Env).WithOrdersTable(cfg.OrdersTable), log)
	if err != nil {
		return nil, fmt.Errorf("aws/awsapp: open: %w", err)
	}
	rep, err := bootstrap.Resolve(ctx, d.Clients, d.Names)
	if err != nil {
		return nil, fmt.Errorf("aws/awsapp: open: %w", err)
	}
	a := &App{cfg: cfg, log: log, deps: d, rep: rep, readyTimeout: cfg.ReadyTimeout}
	if a.readyTimeout <= 0 {
		a.readyTimeout = DefaultReadyTimeout
	}
	dlq, err := d.DeadLetters(rep.DeadLetterQueueURL, rep.ProcessingQueueURL)
	if err != nil {
		return nil, fmt.Errorf("aws/awsapp: open: %w", err)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.New()
		a.cfg.Metrics = cfg.Metrics
	}
	a.store = cfg.Metrics.Store(d.Store)
	if a.rebuilds, err = projections.NewRebuilds(d.Views.RebuildFunc(d.Store, d.Codec, dynamoviews.RebuildOptions{Logger: log})); err != nil {
		return nil, fmt.Errorf("aws/awsapp: open: %w", err)
	}
	a.rebuildsCtx, a.stopRebuilds = context.WithCancel(context.WithoutCancel(ctx))
	registerGauges(cfg.Metrics, a.rebuilds)
	a.handler = console.Mount(cfg.Metrics.Mount(api.NewRouter(api.Deps{Store: a.store, Views: d.Views, Codec: d.Codec, Logger: log, Token: cfg.Token, Ready: a.ready,
		DeadLetters: dlq, Rebuilds: boundRebuilds{a.rebuilds, a.rebuildsCtx}}), cfg.Token))
	if cfg.LocalMappings {
		if err := a.startMappings(ctx); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// startMappings starts the local event-source mappings: projector and
// publisher on the events stream, Workers processors on the processing queue.
func (a *App) startMappings(ctx context.Context) error {
	d, rep, log, region := a.deps, a.rep, a.log, a.cfg.AWS.Region
	proj, err := d.Projector()
	if err != nil {
		return fmt.Errorf("aws/awsapp: open: %w", err)
	}
	pub, err := d.Publisher(rep.EventsTopicARN, rep.CompletedTopicARN)
	if err != nil {
		return fmt.Errorf("aws/awsapp: open: %w", err)
	}
	payment, inventory, err := servicehttp.Services(a.cfg.ServicesURL, a.cfg.Sim)
	if err != nil {
		return fmt.Errorf("aws/awsapp: open: %w", err)
	}
	proc, err := processing.New(processing.Config{Store: a.store, Codec: d.Codec, Payment: a.cfg.Metrics.Payment(payment), Inventory: a.cfg.Metrics.Inventory(inventory), Logger: log, OneStepPerAppend: true, Observer: a.cfg.Metrics.Saga()})
	if err != nil {
		return fmt.Errorf("aws/awsapp: open: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	goRun := func(f func(context.Context) error) {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			_ = f(runCtx)
		}()
	}
	// As deployed: a record that keeps failing is given up after its
	// retries, its failure record sent to the stream failures queue.
	goRun((&localmapping.Stream{Client: d.Clients.Streams, StreamARN: rep.EventsStreamARN, Name: "projector",
		Handler: lambdas.Projector(proj, log), Logger: log, Region: region,
		SQS: d.Clients.SQS, FailureQueueURL: rep.StreamFailureQueueURL,
		FunctionARN: localmapping.FunctionARN(rep.EventsStreamARN, d.Names.ProjectorFunc)}).Run)
	goRun((&localmapping.Stream{Client: d.Clients.Streams, StreamARN: rep.EventsStreamARN, Name: "publisher",
		Handler: lambdas.Publisher(pub, log), Logger: log, Region: region,
		SQS: d.Clients.SQS, FailureQueueURL: rep.StreamFailureQueueURL,
		FunctionARN: localmapping.FunctionARN(rep.EventsStreamARN, d.Names.PublisherFunc)}).Run)
	for range a.cfg.Workers {
		goRun((&localmapping.Queue{Client: d.Clients.SQS, QueueURL: rep.ProcessingQueueURL, QueueARN: rep.ProcessingQueueARN,
			Name: "processor", Handler: lambdas.Processor(proc, log), BatchSize: 1,
			FailureVisibility: a.cfg.RetryBackoff, Logger: log, Region: region}).Run)
	}
	return nil
}

// Handler returns the API.
func (a *App) Handler() http.Handler { return a.handler }

// Serve serves the API on cfg.Addr until ctx ends, then shuts the server
// down gracefully: no new connections, requests in flight finish (for at
// most ShutdownTimeout).
func (a *App) Serve(ctx context.Context) error {
	return httpserver.Serve(ctx, httpserver.Config{
		Addr: a.cfg.Addr, Handler: a.handler, Logger: a.log,
		LogAttrs:        []any{"backend", "aws", "env", a.cfg.Env, "region", a.cfg.AWS.Region},
		ShutdownTimeout: a.cfg.ShutdownTimeout, Started: a.cfg.Started,
	})
}

// Close stops the mappings, letting each finish the batch in hand (for at
// most ShutdownTimeout). Messages not finished are delivered again by the
// queue after their visibility timeout; stream positions are not stored,
// so the next start reads the stream from its oldest record again (the
// projector and the publisher's consumers de-duplicate).
func (a *App) Close() error {
	var err error
	if a.stopRebuilds != nil {
		a.stopRebuilds()
		wctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		if werr := a.rebuilds.Wait(wctx); werr != nil {
			err = errors.New("aws/awsapp: close: the rebuild still busy after the shutdown timeout")
		}
		cancel()
	}
	if a.cancel != nil {
		a.log.Info("shutting down: draining workers")
		a.cancel()
		done := make(chan struct{})
		go func() { a.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(a.cfg.ShutdownTimeout):
			err = errors.Join(err, errors.New("aws/awsapp: close: mappings still busy after the shutdown timeout"))
		}
	}
	a.log.Info("stopped")
	return err
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

// registerGauges adds the rebuild's progress to the metrics, as the
// embedded runtime does.
func registerGauges(m *telemetry.Metrics, r *projections.Rebuilds) {
	m.GaugeSet("rebuild_events", "Progress of the running (or last) read model rebuild: events done and events to do. "+
		"Its rate is rate(ledger_rebuild_events{progress=\"done\"}[1m]).", []string{"progress"},
		func(context.Context) ([]telemetry.Gauge, error) {
			st := r.Status()
			return []telemetry.Gauge{
				{Labels: []string{"done"}, Value: float64(st.Done)},
				{Labels: []string{"total"}, Value: float64(st.Total)},
			}, nil
		})
	m.GaugeSet("rebuild_running", "1 while a read model rebuild runs, else 0.", nil,
		func(context.Context) ([]telemetry.Gauge, error) {
			v := 0.0
			if r.Status().Running {
				v = 1
			}
			return []telemetry.Gauge{{Value: v}}, nil
		})
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
