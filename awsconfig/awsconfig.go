// Package awsconfig builds the AWS SDK configuration and clients orderledger
// uses, from the standard configuration chain (environment, shared files,
// instance and container roles), so the same code talks to AWS, to a sandbox
// account or to an emulator named by AWS_ENDPOINT_URL.
//
// It also owns Meter, an SDK middleware that counts requests and DynamoDB
// capacity units: the basis of the cost-per-order figures.
package awsconfig

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// DefaultRegion is used when the configuration chain names no region.
const DefaultRegion = "us-east-1"

// Options adjust Load.
type Options struct {
	// Endpoint, when set, overrides AWS_ENDPOINT_URL for every service.
	Endpoint string
	// Meter, when set, counts every request made with the configuration.
	Meter *Meter
}

// Load returns the configuration from the standard chain. The region
// defaults to DefaultRegion. With an endpoint (Options.Endpoint or
// AWS_ENDPOINT_URL) and no credentials anywhere in the chain, it uses
// static dummy credentials, which emulators accept.
func Load(ctx context.Context, o Options) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("awsconfig: load: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if o.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(o.Endpoint)
	}
	if cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "" {
		if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
			cfg.Credentials = credentials.NewStaticCredentialsProvider("test", "test", "")
		}
	}
	if o.Meter != nil {
		o.Meter.Attach(&cfg)
	}
	return cfg, nil
}

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
