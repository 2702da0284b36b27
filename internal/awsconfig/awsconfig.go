// Package awsconfig builds the AWS SDK configuration and clients orderledger
// uses, from the standard configuration chain (environment, shared files,
// instance and container roles), so the same code talks to AWS, to a sandbox
// account or to an emulator named by AWS_ENDPOINT_URL.
package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/logging"
)

// DefaultRegion is used when the configuration chain names no region.
const DefaultRegion = "us-east-1"

// Options adjust Load.
type Options struct {
	// Endpoint, when set, overrides AWS_ENDPOINT_URL for every service.
	Endpoint string
	// Getenv reads the environment (nil: os.Getenv); AWS_ENDPOINT_URL,
	// AWS_REGION and AWS_ACCESS_KEY_ID are read through it as well.
	Getenv func(string) string
}

// Load returns the configuration from the standard chain. The region
// defaults to DefaultRegion. With an endpoint (Options.Endpoint or
// AWS_ENDPOINT_URL) and no credentials anywhere in the chain, it uses
// static dummy credentials, which emulators accept.
func Load(ctx context.Context, o Options) (aws.Config, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var opts []func(*config.LoadOptions) error
	if r := getenv("AWS_REGION"); r != "" {
		opts = append(opts, config.WithRegion(r))
	}
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = getenv("AWS_ENDPOINT_URL")
	}
	// An emulator without credentials in the environment gets static dummy
	// ones, without probing the rest of the chain (instance metadata would
	// time out off AWS).
	if endpoint != "" && getenv("AWS_ACCESS_KEY_ID") == "" && getenv("AWS_PROFILE") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	// The SDK's own log lines (a fallback to IMDSv1 off EC2, say) go to
	// slog at debug level: what a user must act on is in the errors.
	opts = append(opts, config.WithLogger(SDKLogger{}))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("awsconfig: load: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if endpoint != "" {
		cfg.BaseEndpoint = aws.String(endpoint)
	}
	return cfg, nil
}

// SDKLogger is the AWS SDK's logger: its lines go to slog's default
// logger at debug level, prefixed "aws sdk: ", with the operation's
// context (the SDK calls WithContext), so that a handler that reads the
// context (internal/logging: trace_id, order_id) sees the call's.
type SDKLogger struct{ ctx context.Context }

var (
	_ logging.Logger        = SDKLogger{}
	_ logging.ContextLogger = SDKLogger{}
)

// Logf implements logging.Logger.
func (l SDKLogger) Logf(c logging.Classification, format string, v ...any) {
	ctx := l.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	slog.DebugContext(ctx, "aws sdk: "+fmt.Sprintf(format, v...), "classification", string(c))
}

// WithContext implements logging.ContextLogger.
func (l SDKLogger) WithContext(ctx context.Context) logging.Logger { return SDKLogger{ctx: ctx} }

// ForEndpoint returns a configuration for an emulator at endpoint: static
// credentials, region DefaultRegion, no shared files read.
func ForEndpoint(endpoint string) aws.Config {
	return aws.Config{
		Region:       DefaultRegion,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
		// Emulators answer fast or not at all; a few retries cover a busy one.
		RetryMaxAttempts: 5,
	}
}

// Clients are the service clients of one configuration. Build them once per
// process (in a Lambda, outside the handler) and share them.
type Clients struct {
	DynamoDB *dynamodb.Client
	Streams  *dynamodbstreams.Client
	SQS      *sqs.Client
	SNS      *sns.Client
}

// NewClients returns the clients for cfg.
func NewClients(cfg aws.Config) Clients {
	return Clients{
		DynamoDB: dynamodb.NewFromConfig(cfg),
		Streams:  dynamodbstreams.NewFromConfig(cfg),
		SQS:      sqs.NewFromConfig(cfg),
		SNS:      sns.NewFromConfig(cfg),
	}
}

// CheckCredentials fails, with what to set, when cfg's credential chain
// yields no credentials within a few seconds. It asks nothing of AWS beyond
// the chain itself (the environment, shared files, ECS or EC2 metadata).
func CheckCredentials(ctx context.Context, cfg aws.Config) error {
	if cfg.Credentials == nil {
		return errors.New(noCredentials)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return errors.New(noCredentials)
	}
	return nil
}

const noCredentials = "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
	"or run where a role provides them (ECS, Lambda, EC2); for a local emulator set AWS_ENDPOINT_URL (export AWS_ENDPOINT_URL=$(scripts/moto.sh start))"
