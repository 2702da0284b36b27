package awsapp

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamodbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderledger/orderledger/api"
)

// DefaultReadyTimeout bounds each readiness check when Config sets none.
const DefaultReadyTimeout = 2 * time.Second

// ready reports the readiness checks of GET /readyz: the events table, the
// read table and the processing queue answer a cheap call each
// (DescribeTable, GetQueueAttributes), run concurrently, one attempt each
// (no SDK retries) within ReadyTimeout. Failures are logged at warning
// level; the client sees only the check's name and a fixed detail.
func (a *App) ready(ctx context.Context) []api.Check {
	db, q, n := a.deps.Clients.DynamoDB, a.deps.Clients.SQS, a.deps.Names
	once := func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }
	describe := func(table string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, once)
			return err
		}
	}
	probes := []struct {
		name  string
		probe func(context.Context) error
	}{
		{"events table", describe(n.EventsTable)},
		{"read table", describe(n.OrdersTable)},
		{"processing queue", func(ctx context.Context) error {
			_, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
				QueueUrl:       aws.String(a.rep.ProcessingQueueURL),
				AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages},
			}, func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
			return err
		}},
	}
	checks := make([]api.Check, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, a.readyTimeout)
			defer cancel()
			err := p.probe(pctx)
			checks[i] = api.Check{Name: p.name, OK: err == nil}
			if err != nil {
				checks[i].Detail = detail(err)
				a.log.WarnContext(ctx, "aws/awsapp: readiness check failed", "check", p.name, "err", err)
			}
		})
	}
	wg.Wait()
	return checks
}

// detail says what a failed check means without the error's text.
func detail(err error) string {
	var noTable *dynamodbtypes.ResourceNotFoundException
	var noQueue *sqstypes.QueueDoesNotExist
	if errors.As(err, &noTable) || errors.As(err, &noQueue) {
		return "missing (run `ledger aws bootstrap` or apply the Terraform)"
	}
	return "not answering"
}
