package localmapping_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

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
