package localmapping_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/orderledger/orderledger/aws/localmapping"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/dynamostore"
	"github.com/orderledger/orderledger/internal/awstest"
)

var ids = domain.NewULIDSource(nil)

func ev(n int) eventstore.Event {
	now := time.Now().UTC()
	b, _ := json.Marshal(map[string]int{"n": n})
	return eventstore.Event{EventID: ids(now), Type: "Tested", SchemaVersion: 1, OccurredAt: now, Data: b}
}

// TestStreamDeliversEachEventOnceAcrossCancelledTransactions appends, lets a
// transaction be cancelled (which made held iterators return phantom
// records on the emulator), appends more, and checks that the handler saw
// every event exactly once, in order, and that a reported failure is retried
// from the failed record.
func TestStreamDeliversEachEventOnceAcrossCancelledTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := awstest.Clients(t)
	table := awstest.Table(t, c.DynamoDB, "events")
	store, err := dynamostore.New(c.DynamoDB, table, dynamostore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	failOnce := true
	m := &localmapping.Stream{Client: c.Streams, StreamARN: aws.ToString(desc.Table.LatestStreamArn), Name: "test",
		Handler: func(ctx context.Context, e events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			var resp events.DynamoDBEventResponse
			for _, r := range e.Records {
				got, ok, err := dynamostore.DecodeStreamRecord(r)
				if err != nil {
					return resp, err
				}
				if !ok {
					continue
				}
				if got.Version == 3 && failOnce {
					failOnce = false
					resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: r.Change.SequenceNumber}}
					return resp, nil
				}
				seen = append(seen, got.StreamID+"/"+string(got.Data))
			}
			return resp, nil
		}}
	stream := ids(time.Now())
	if _, err := store.Append(ctx, stream, 0, ev(1), ev(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	var ce *eventstore.ConflictError
	if _, err := store.Append(ctx, stream, 1, ev(99), ev(98)); !errors.As(err, &ce) {
		t.Fatalf("conflicting append: %v", err)
	}
	if _, err := store.Append(ctx, stream, 2, ev(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.AppendIdempotent(ctx, "k", stream, 3, ev(4), ev(5)); err != nil {
		t.Fatal(err)
	}
	// The first poll after the failure stops at version 3; the next ones
	// carry on from it.
	if n, err := m.Poll(ctx); err == nil {
		t.Fatalf("a reported failure was not surfaced: %d handled, saw %v", n, seen)
	}
	for range 3 {
		if _, err := m.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{`/{"n":1}`, `/{"n":2}`, `/{"n":3}`, `/{"n":4}`, `/{"n":5}`}
	if len(seen) != len(want) {
		t.Fatalf("handler saw %v, want %d events once each", seen, len(want))
	}
	for i := range want {
		if seen[i] != stream+want[i] {
			t.Fatalf("handler saw %v, want %v in order", seen, want)
		}
	}
}

// TestStreamGivesUpAFailingRecordAfterItsRetriesAndSendsLambdasFailureRecord
// fails every try of one order's events: the mapping narrows the batch to
// the failing record, retries it MaxRetryAttempts times, sends the failure
// record Lambda sends (shard, sequence numbers, batch size, stream,
// function) to the failures queue and carries on with the other orders.
func TestStreamGivesUpAFailingRecordAfterItsRetriesAndSendsLambdasFailureRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := awstest.Clients(t)
	table := awstest.Table(t, c.DynamoDB, "events")
	store, err := dynamostore.New(c.DynamoDB, table, dynamostore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(table + "-failures")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.SQS.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) })

	good1, bad, good2 := ids(time.Now()), ids(time.Now()), ids(time.Now())
	for _, s := range []string{good1, bad, good2} {
		if _, err := store.Append(ctx, s, 0, ev(1)); err != nil {
			t.Fatal(err)
		}
	}
	tries := map[string]int{}
	var handled []string
	var badSeq string
	const retries = 2
	streamARN := aws.ToString(desc.Table.LatestStreamArn)
	m := &localmapping.Stream{Client: c.Streams, StreamARN: streamARN, Name: "projector",
		SQS: c.SQS, FailureQueueURL: aws.ToString(q.QueueUrl), MaxRetryAttempts: retries, FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:t-order-projector",
		Handler: func(ctx context.Context, e events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			var resp events.DynamoDBEventResponse
			for _, r := range e.Records {
				got, ok, err := dynamostore.DecodeStreamRecord(r)
				if err != nil || !ok {
					continue
				}
				tries[got.StreamID]++
				if got.StreamID == bad {
					badSeq = r.Change.SequenceNumber
					resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: r.Change.SequenceNumber}}
					return resp, nil
				}
				handled = append(handled, got.StreamID)
			}
			return resp, nil
		}}
	// The first try fails at the bad record with 2 records from it (bad,
	// good2): bisected to 1, then the bad record alone fails and is retried
	// twice, and the third failure at it alone gives it up.
	polls := 0
	for ; polls < 20 && len(handled) < 2; polls++ {
		_, _ = m.Poll(ctx)
	}
	if !slices.Equal(handled, []string{good1, good2}) {
		t.Fatalf("after %d polls the handler completed %v, want the two good orders %v", polls, handled, []string{good1, good2})
	}
	if want := 1 + 1 + retries; tries[bad] != want {
		t.Fatalf("the failing order was tried %d times, want %d (first try, the bisected try, %d retries)", tries[bad], want, retries)
	}
	out, err := c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("failures queue holds %d messages, want 1", len(out.Messages))
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("failure record lacks %q: %s", k, aws.ToString(out.Messages[0].Body))
		}
	}
	rec, err := localmapping.DecodeFailureRecord([]byte(aws.ToString(out.Messages[0].Body)))
	if err != nil {
		t.Fatal(err)
	}
	b := rec.Batch
	if b.StartSequenceNumber != badSeq || b.EndSequenceNumber != badSeq || b.BatchSize != 1 || b.StreamARN != streamARN || b.ShardID == "" ||
		b.ApproximateArrivalOfFirstRecord.IsZero() {
		t.Fatalf("failure record batch = %+v, want the bad record %s alone of stream %s", b, badSeq, streamARN)
	}
	if rc := rec.RequestContext; rc.Condition != localmapping.ConditionRetriesExhausted || rc.ApproximateInvokeCount != tries[bad] ||
		rec.FunctionName() != "t-order-projector" || rc.RequestID == "" || rec.Version != "1.0" {
		t.Fatalf("failure record request context = %+v (function %q, version %q)", rc, rec.FunctionName(), rec.Version)
	}
	// Given up means moved past: more polls hand nothing in again.
	before := tries[bad]
	for range 3 {
		if _, err := m.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if tries[bad] != before {
		t.Fatalf("the given-up record was handed in again (%d tries, then %d)", before, tries[bad])
	}
}

// TestStreamBacksOffBetweenRetries: a retry waits Interval<<n after the
// n-th failed try, so polling sooner hands nothing in.
func TestStreamBacksOffBetweenRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := awstest.Clients(t)
	table := awstest.Table(t, c.DynamoDB, "events")
	store, err := dynamostore.New(c.DynamoDB, table, dynamostore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(table + "-failures")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.SQS.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) })
	if _, err := store.Append(ctx, ids(time.Now()), 0, ev(1)); err != nil {
		t.Fatal(err)
	}
	tries := 0
	const interval = 500 * time.Millisecond
	m := &localmapping.Stream{Client: c.Streams, StreamARN: aws.ToString(desc.Table.LatestStreamArn), Name: "publisher", Interval: interval,
		SQS: c.SQS, FailureQueueURL: aws.ToString(q.QueueUrl), MaxRetryAttempts: 1,
		Handler: func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			tries++
			return events.DynamoDBEventResponse{}, errors.New("down (test)")
		}}
	if _, err := m.Poll(ctx); err == nil || tries != 1 {
		t.Fatalf("first poll: %v after %d tries, want a failure after 1", err, tries)
	}
	failed := time.Now() // the retry is due at most 2*interval after this
	if _, err := m.Poll(ctx); err != nil || tries != 1 {
		t.Fatalf("a poll within the backoff: %v, %d tries; want the shard skipped", err, tries)
	}
	time.Sleep(time.Until(failed.Add(2*interval + 50*time.Millisecond)))
	if n, err := m.Poll(ctx); err != nil || tries != 2 || n != 1 {
		t.Fatalf("the poll after the backoff: %d given up, %v, %d tries; want the retry, failed and given up", n, err, tries)
	}
}
