package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/orderledger/orderledger/aws/awsapp"
	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/resources"
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
	if !resources.ValidEnv(*envName) {
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

// awsHooks let tests observe an AWS-backed server.
type awsHooks struct {
	// Instrument, when set, adjusts the AWS configuration before any client
	// is built from it (a test attaches its request meter).
	Instrument func(*aws.Config)
}

// serveAWS runs the AWS runtime (package aws/awsapp): the API on DynamoDB,
// SQS and SNS of environment LEDGER_ENV (default dev) through the standard
// AWS configuration chain (AWS_ENDPOINT_URL for an emulator), and, unless
// --local-mappings=false, local event-source mappings that call the Lambda
// handlers.
func serveAWS(ctx context.Context, e *env, o serveOptions) error {
	return serveAWSWith(ctx, e, o, awsHooks{})
}

func serveAWSWith(ctx context.Context, e *env, o serveOptions, hooks awsHooks) error {
	envName := e.getenv("LEDGER_ENV")
	if envName == "" {
		envName = resources.DefaultEnv
	}
	if !resources.ValidEnv(envName) {
		return usagef("LEDGER_ENV must be 1..40 lowercase letters, digits or '-', not %q", envName)
	}
	if o.NotifyWebhook != "" {
		return usagef("--notify-webhook is not supported with --backend aws: subscribe the webhook to the %s topic", resources.For(envName).CompletedTopic)
	}
	ordersTable, err := ordersTableSetting(e)
	if err != nil {
		return err
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Getenv: e.getenv})
	if err != nil {
		return err
	}
	if err := awsconfig.CheckCredentials(ctx, cfg); err != nil {
		return usagef("%s", err)
	}
	if hooks.Instrument != nil {
		hooks.Instrument(&cfg)
	}
	return awsapp.Run(ctx, awsapp.Config{
		AWS: cfg, Env: envName, OrdersTable: ordersTable, Addr: o.Addr, Token: o.Token,
		LocalMappings: o.LocalMappings, Workers: o.Workers, RetryBackoff: o.RetryBackoff, Sim: o.Sim, ServicesURL: o.ServicesURL,
		Logger: o.Logger, ShutdownTimeout: o.ShutdownTimeout,
		Started: func(addr string) {
			fmt.Fprintf(e.stderr, "ledger: serving on http://%s (backend aws, environment %s, read table %s, region %s)\n",
				addr, envName, resources.For(envName).WithOrdersTable(ordersTable).OrdersTable, cfg.Region)
		},
	})
}

// ordersTableSetting returns LEDGER_ORDERS_TABLE (empty: <env>-orders).
func ordersTableSetting(e *env) (string, error) {
	t := strings.TrimSpace(e.getenv(resources.OrdersTableEnv))
	if t != "" && !resources.ValidTableName(t) {
		return "", usagef("%s=%q is not a DynamoDB table name (3..255 letters, digits, '_', '-', '.')", resources.OrdersTableEnv, t)
	}
	return t, nil
}
