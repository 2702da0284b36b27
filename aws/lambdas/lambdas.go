// Package lambdas holds the handlers of orderledger's four AWS Lambda
// functions, as functions of the aws-lambda-go event types, and the wiring
// they share. Each function's main.go (projector, publisher, processor, api)
// loads its configuration and builds its dependencies once, at cold start,
// outside the handler (Load: LoadConfig, then NewDeps; a bad or missing
// setting fails the cold start, naming the variable), and starts it:
//
//	projector: DynamoDB stream of the events table -> read table
//	publisher: DynamoDB stream of the events table -> SNS topics
//	processor: SQS processing queue                -> the order saga
//	api:       API Gateway HTTP API (payload v2)   -> the REST API (chi)
//
// Stream and queue handlers never fail a whole batch for one record: they
// return partial batch failures (events.DynamoDBEventResponse,
// events.SQSEventResponse), so the event source retries only what failed.
// `ledger serve --backend aws` calls the same handlers from local
// event-source mappings (package localmapping).
package lambdas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/dynamostore"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/logging"
	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/internal/telemetry"
	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/messaging/awsmsg"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/processing"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/dynamoviews"
	"github.com/orderledger/orderledger/publisher"
	"github.com/orderledger/orderledger/services/servicehttp"
	"github.com/orderledger/orderledger/services/sim"
)

// Deps are the dependencies every function builds once per process.
type Deps struct {
	// Config is the function's configuration (zero but for the names when
	// built by NewDeps rather than Load).
	Config  Config
	Names   resources.Names
	Clients awsconfig.Clients
	Store   *dynamostore.Store
	// Events is Store with every accepted append also written to stdout as
	// a CloudWatch Embedded Metric Format line (telemetry.EMFStore): the
	// functions that append (api, processor) append through it.
	Events eventstore.Store
	Views  *dynamoviews.Store
	Codec  *orders.Codec
	Logger *slog.Logger
}

// NewDeps wires the stores of environment env over cfg.
func NewDeps(cfg aws.Config, env string, log *slog.Logger) (*Deps, error) {
	return NewDepsFor(cfg, resources.For(env), log)
}

// NewDepsFor wires the stores named by names over cfg (an environment's
// names with another read table: resources.Names.WithOrdersTable).
func NewDepsFor(cfg aws.Config, names resources.Names, log *slog.Logger) (*Deps, error) {
	if log == nil {
		log = logging.New(os.Stderr, nil)
	}
	d := &Deps{Names: names, Clients: awsconfig.NewClients(cfg), Codec: orders.NewCodec(), Logger: log}
	var err error
	if d.Store, err = dynamostore.New(d.Clients.DynamoDB, d.Names.EventsTable, dynamostore.Options{}); err != nil {
		return nil, err
	}
	d.Events = telemetry.EMFStore(d.Store, os.Stdout, names.Env)
	if d.Views, err = dynamoviews.New(d.Clients.DynamoDB, d.Names.OrdersTable); err != nil {
		return nil, err
	}
	return d, nil
}

// Load wires the dependencies of a deployed function at cold start: its
// configuration read once through getenv (LoadConfig), then its stores.
func Load(ctx context.Context, getenv func(string) string) (*Deps, error) {
	cfg, err := LoadConfig(ctx, getenv)
	if err != nil {
		return nil, err
	}
	// Traces go to OTEL_EXPORTER_OTLP_ENDPOINT when it is set (each
	// handler flushes them before it returns); logs are internal/logging's
	// JSON lines, the AWS SDK's through slog's default logger too.
	if _, err := tracing.Setup(ctx, getenv, "orderledger-"+cfg.Env); err != nil {
		return nil, err
	}
	d, err := NewDepsFor(cfg.AWS, resources.For(cfg.Env).WithOrdersTable(cfg.OrdersTable), nil)
	if err != nil {
		return nil, err
	}
	slog.SetDefault(d.Logger)
	d.Config = cfg
	return d, nil
}

// Processor returns the order saga over d's store, calling the services at
// Config.ServicesURL, or the simulators when it is unset.
func (d *Deps) Processor() (*processing.Processor, error) {
	cfg := processing.Config{Store: d.Events, Codec: d.Codec, Logger: d.Logger, OneStepPerAppend: true}
	if d.Config.ServicesURL != "" {
		c, err := servicehttp.NewClient(d.Config.ServicesURL, ServicesTimeout)
		if err != nil {
			return nil, err
		}
		cfg.Payment, cfg.Inventory = c, c
	} else {
		s, err := sim.New(sim.Config{})
		if err != nil {
			return nil, err
		}
		cfg.Payment, cfg.Inventory = s, s
	}
	return processing.New(cfg)
}

// Projector returns a read model projector over d.
func (d *Deps) Projector() (*projections.Projector, error) {
	return projections.NewProjector(d.Views, d.Store, d.Codec)
}

// TopicARN returns the ARN of topic name in the account and region of the
// ARN of any other resource (a Lambda function's, a queue's).
func TopicARN(anyARN, name string) (string, error) {
	p := strings.SplitN(anyARN, ":", 6)
	if len(p) < 6 || p[0] != "arn" || p[3] == "" || p[4] == "" {
		return "", fmt.Errorf("lambdas: %q is not an ARN with a region and an account", anyARN)
	}
	return strings.Join([]string{"arn", p[1], "sns", p[3], p[4], name}, ":"), nil
}

// Publisher returns a publisher to the topics whose ARNs are given.
func (d *Deps) Publisher(eventsARN, completedARN string) (*publisher.Publisher, error) {
	ev, err := awsmsg.NewTopic(d.Clients.SNS, eventsARN)
	if err != nil {
		return nil, err
	}
	done, err := awsmsg.NewTopic(d.Clients.SNS, completedARN)
	if err != nil {
		return nil, err
	}
	return publisher.New(publisher.Config{Events: ev, Completed: done, Logger: d.Logger})
}

// StreamHandler is the signature of a DynamoDB stream Lambda handler.
type StreamHandler func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)

// QueueHandler is the signature of an SQS Lambda handler.
type QueueHandler func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)

// seqLess orders stream sequence numbers (decimal strings of any length).
func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// decodeRecords decodes a stream batch; records that are not events are
// left out, records that cannot be decoded are returned as failures.
func decodeRecords(ev events.DynamoDBEvent, log *slog.Logger) (envs []eventstore.Event, seqs []string, failed []string) {
	for _, r := range ev.Records {
		e, ok, err := dynamostore.DecodeStreamRecord(r)
		if err != nil {
			log.Error("lambdas: undecodable stream record", "sequence_number", r.Change.SequenceNumber, "err", err)
			failed = append(failed, r.Change.SequenceNumber)
			continue
		}
		if ok {
			envs = append(envs, e)
			seqs = append(seqs, r.Change.SequenceNumber)
		}
	}
	return envs, seqs, failed
}

// streamFailures reports the lowest failed sequence number: Lambda retries
// the batch from there, so nothing after it is lost.
func streamFailures(failed []string) events.DynamoDBEventResponse {
	var resp events.DynamoDBEventResponse
	if len(failed) == 0 {
		return resp
	}
	low := failed[0]
	for _, s := range failed[1:] {
		if seqLess(s, low) {
			low = s
		}
	}
	resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: low}}
	return resp
}

// Projector returns the projector function's handler: the batch's events
// grouped by order, each order's view brought up to date by p (which
// repairs gaps from the event store and ignores duplicates).
func Projector(p *projections.Projector, log *slog.Logger) StreamHandler {
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		envs, seqs, failed := decodeRecords(ev, log)
		type group struct {
			envs  []eventstore.Event
			first string
		}
		var order []string
		groups := map[string]*group{}
		for i, e := range envs {
			g := groups[e.StreamID]
			if g == nil {
				g = &group{first: seqs[i]}
				groups[e.StreamID] = g
				order = append(order, e.StreamID)
			}
			g.envs = append(g.envs, e)
		}
		defer tracing.ForceFlush(ctx)
		for _, id := range order {
			g := groups[id]
			// The trace of the batch's last event of the order, from its metadata.
			octx, span := tracing.Start(logging.WithOrderID(tracing.Continue(ctx, g.envs[len(g.envs)-1].Metadata.TraceParent), id),
				"project order", trace.SpanKindConsumer, attribute.Int("events", len(g.envs)))
			err := p.HandleBatch(octx, g.envs)
			if err != nil {
				log.ErrorContext(octx, "lambdas: projector: order failed", "order_id", id, "err", err)
				failed = append(failed, g.first)
			}
			tracing.End(span, err)
		}
		return streamFailures(failed), nil
	}
}

// Publisher returns the publisher function's handler: the batch's events
// routed by p in stream order, in SNS batches of up to ten (one billed
// request, not ten); from the first failure on, the rest of the batch is
// left to the retry (consumers de-duplicate by event ID).
func Publisher(p *publisher.Publisher, log *slog.Logger) StreamHandler {
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		defer tracing.ForceFlush(ctx)
		envs, seqs, failed := decodeRecords(ev, log)
		n := len(envs)
		for i := range envs {
			if len(failed) > 0 && seqLess(failed[0], seqs[i]) {
				n = i
				break
			}
		}
		if done, err := p.PublishBatch(ctx, envs[:n]); err != nil {
			log.Error("lambdas: publisher: publish failed", "event_id", envs[done].EventID, "err", err)
			failed = append(failed, seqs[done])
		}
		return streamFailures(failed), nil
	}
}

// LazyPublisher returns the publisher function's handler for a deployed
// function: to the topics d.Config names, or, when it names none, to the
// topics whose ARNs are derived on the first invocation from the function's
// own ARN (same account and region), which only an invocation carries.
func LazyPublisher(d *Deps) StreamHandler {
	var h StreamHandler
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		if h == nil {
			evARN, doneARN := d.Config.EventsTopicARN, d.Config.CompletedTopicARN
			if evARN == "" || doneARN == "" {
				lc, ok := lambdacontext.FromContext(ctx)
				if !ok {
					return events.DynamoDBEventResponse{}, errors.New("lambdas: publisher: no Lambda context to derive topic ARNs from")
				}
				var err error
				if evARN, err = TopicARN(lc.InvokedFunctionArn, d.Names.EventsTopic); err != nil {
					return events.DynamoDBEventResponse{}, err
				}
				if doneARN, err = TopicARN(lc.InvokedFunctionArn, d.Names.CompletedTopic); err != nil {
					return events.DynamoDBEventResponse{}, err
				}
			}
			p, err := d.Publisher(evARN, doneARN)
			if err != nil {
				return events.DynamoDBEventResponse{}, err
			}
			h = Publisher(p, d.Logger)
		}
		return h(ctx, ev)
	}
}

// Processor returns the processor function's handler: each message handed
// to the saga; the ones that fail are reported so that SQS redelivers them
// after the visibility timeout (and dead-letters them after 3 receives).
func Processor(p *processing.Processor, log *slog.Logger) QueueHandler {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		defer tracing.ForceFlush(ctx)
		var resp events.SQSEventResponse
		for _, r := range ev.Records {
			attrs := map[string]string{}
			for k, v := range r.MessageAttributes {
				if v.StringValue != nil {
					attrs[k] = *v.StringValue
				}
			}
			msg := awsmsg.FromSQS(r.MessageId, r.Body, r.ReceiptHandle, r.Attributes, attrs)
			if err := p.Handle(ctx, msg); err != nil {
				log.Error("lambdas: processor: message failed", "message_id", r.MessageId, "receive_count", msg.ReceiveCount,
					"permanent", processing.IsPermanent(err), "err", err)
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
		}
		return resp, nil
	}
}

// API returns the API function's handler: API Gateway HTTP API (payload
// format 2.0) requests served by h, the same router `ledger serve` runs.
// The router's server span continues the request's traceparent header.
func API(h http.Handler) func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	proxy := httpadapter.NewV2(h).ProxyWithContext
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		defer tracing.ForceFlush(ctx)
		return proxy(ctx, req)
	}
}

// DeadLetters returns the dead-letter queue at dlqURL, whose messages
// come from the processing queue at processingURL, as the port of the
// dead-letter use cases.
func (d *Deps) DeadLetters(dlqURL, processingURL string) (awsmsg.DeadLetters, error) {
	dlq, err := awsmsg.NewQueue(d.Clients.SQS, dlqURL)
	if err != nil {
		return awsmsg.DeadLetters{}, err
	}
	src, err := awsmsg.NewQueue(d.Clients.SQS, processingURL)
	if err != nil {
		return awsmsg.DeadLetters{}, err
	}
	return awsmsg.DeadLetters{DLQ: dlq, Source: src}, nil
}
