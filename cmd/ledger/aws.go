package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/aws/lambdas"
	"github.com/orderledger/orderledger/aws/localmapping"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/processing"
	"github.com/orderledger/orderledger/services/sim"
)

func init() {
	register(command{name: "aws bootstrap", summary: "create the AWS tables, stream, topics, queues and subscription (idempotent)", run: runAWSBootstrap})
	registerServeBackend("aws", serveAWS)
}

func runAWSBootstrap(ctx context.Context, e *env, args []string) error {
	fs := newFlags("aws bootstrap", e)
	envName := fs.String("env", resources.DefaultEnv, "environment prefix of the resource names (dev: dev-order-event-log, dev-orders...)")
	endpoint := fs.String("endpoint", "", "AWS endpoint URL, e.g. an emulator's (default: AWS_ENDPOINT_URL, else AWS)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if !validEnv(*envName) {
		return usagef("--env must be 1..40 lowercase letters, digits or '-', not %q", *envName)
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Endpoint: *endpoint, Getenv: e.getenv})
	if err != nil {
		return err
	}
	rep, err := bootstrap.Bootstrap(ctx, awsconfig.NewClients(cfg), resources.For(*envName))
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(rep)
	}
	for _, n := range rep.Created {
		fmt.Fprintf(e.stdout, "created  %s\n", n)
	}
	for _, n := range rep.Existing {
		fmt.Fprintf(e.stdout, "exists   %s\n", n)
	}
	fmt.Fprintf(e.stdout, "events stream     %s\nprocessing queue  %s\ndead-letter queue %s\n", rep.EventsStreamARN, rep.ProcessingQueueURL, rep.DeadLetterQueueURL)
	return nil
}

func validEnv(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// awsHooks let tests observe an AWS-backed server.
type awsHooks struct {
	// Instrument, when set, adjusts the AWS configuration before any client
	// is built from it (a test attaches its request meter).
	Instrument func(*aws.Config)
}

// serveAWS serves the API on DynamoDB, SQS and SNS (environment LEDGER_ENV,
// default dev; the standard AWS configuration chain, AWS_ENDPOINT_URL for
// an emulator) and runs local event-source mappings that call the Lambda
// handlers: projector and publisher on the events stream, the processor on
// the processing queue.
func serveAWS(ctx context.Context, e *env, o serveOptions) error {
	return serveAWSWith(ctx, e, o, awsHooks{})
}

func serveAWSWith(ctx context.Context, e *env, o serveOptions, hooks awsHooks) error {
	envName := e.getenv("LEDGER_ENV")
	if envName == "" {
		envName = resources.DefaultEnv
	}
	if !validEnv(envName) {
		return usagef("LEDGER_ENV must be 1..40 lowercase letters, digits or '-', not %q", envName)
	}
	if o.NotifyWebhook != "" {
		return usagef("--notify-webhook is not supported with --backend aws: subscribe the webhook to the %s topic", resources.For(envName).CompletedTopic)
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Getenv: e.getenv})
	if err != nil {
		return err
	}
	if hooks.Instrument != nil {
		hooks.Instrument(&cfg)
	}
	d, err := lambdas.NewDeps(cfg, envName, o.Logger)
	if err != nil {
		return err
	}
	rep, err := bootstrap.Resolve(ctx, d.Clients, d.Names)
	if err != nil {
		return err
	}
	proj, err := d.Projector()
	if err != nil {
		return err
	}
	pub, err := d.Publisher(rep.EventsTopicARN, rep.CompletedTopicARN)
	if err != nil {
		return err
	}
	simulator, err := sim.New(o.Sim)
	if err != nil {
		return err
	}
	proc, err := processing.New(processing.Config{Store: d.Store, Codec: d.Codec, Payment: simulator, Inventory: simulator, Logger: o.Logger})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           api.NewRouter(api.Deps{Store: d.Store, Views: d.Views, Codec: d.Codec, Logger: o.Logger, Token: o.Token}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = f(workCtx)
		}()
	}
	if o.LocalMappings {
		goRun((&localmapping.Stream{Client: d.Clients.Streams, StreamARN: rep.EventsStreamARN, Name: "projector",
			Handler: lambdas.Projector(proj, o.Logger), Logger: o.Logger, Region: cfg.Region}).Run)
		goRun((&localmapping.Stream{Client: d.Clients.Streams, StreamARN: rep.EventsStreamARN, Name: "publisher",
			Handler: lambdas.Publisher(pub, o.Logger), Logger: o.Logger, Region: cfg.Region}).Run)
		for range max(o.Workers, 1) {
			goRun((&localmapping.Queue{Client: d.Clients.SQS, QueueURL: rep.ProcessingQueueURL, QueueARN: rep.ProcessingQueueARN,
				Name: "processor", Handler: lambdas.Processor(proc, o.Logger), BatchSize: 1,
				FailureVisibility: o.RetryBackoff, Logger: o.Logger, Region: cfg.Region}).Run)
		}
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(e.stderr, "ledger: serving on http://%s (backend aws, environment %s, region %s)\n", ln.Addr(), envName, cfg.Region)

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); serr != nil && err == nil {
		err = serr
	}
	stopWork()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil && !strings.Contains(err.Error(), "closed") {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
