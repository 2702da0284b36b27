package awsapp_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/aws/awsapp"
	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/aws/localmapping"
	"github.com/orderledger/orderledger/eventstore/dynamostore"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/dynamoviews"
)

// TestLocalProjectorSendsFailureRecordsToTheEnvironmentsQueue: with the
// read table gone, the local projector mapping of `serve --backend aws`
// gives the order's records up after its retries and sends their failure
// records, naming the projector function, to the environment's stream
// failures queue; once the table is back it carries on and the item
// converges to the fold.
func TestLocalProjectorSendsFailureRecordsToTheEnvironmentsQueue(t *testing.T) {
	t.Parallel()
	names, clients := awstest.Bootstrap(t)
	ctx := context.Background()
	rep, err := bootstrap.Resolve(ctx, clients, names)
	if err != nil {
		t.Fatal(err)
	}
	a, err := awsapp.Open(ctx, awsapp.Config{AWS: awstest.Config(t), Env: names.Env, Addr: "127.0.0.1:0", LocalMappings: true, Workers: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if _, err := clients.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(names.OrdersTable)}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	c, err := api.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.Place(ctx, api.PlaceRequest{CustomerName: "Fay", ProductName: "tea", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}

	var rec localmapping.FailureRecord
	for deadline := time.Now().Add(45 * time.Second); ; {
		out, err := clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(rep.StreamFailureQueueURL), WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) > 0 {
			if rec, err = localmapping.DecodeFailureRecord([]byte(aws.ToString(out.Messages[0].Body))); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failure record in the stream failures queue after 45s")
		}
	}
	if rec.FunctionName() != names.ProjectorFunc || rec.RequestContext.Condition != localmapping.ConditionRetriesExhausted ||
		rec.Batch.StreamARN != rep.EventsStreamARN || rec.Batch.BatchSize != 1 {
		t.Fatalf("failure record = %+v, want one record given up by %s", rec, names.ProjectorFunc)
	}

	if err := bootstrap.EnsureOrdersTable(ctx, clients.DynamoDB, names.OrdersTable); err != nil {
		t.Fatal(err)
	}
	views, err := dynamoviews.New(clients.DynamoDB, names.OrdersTable)
	if err != nil {
		t.Fatal(err)
	}
	store, err := dynamostore.New(clients.DynamoDB, names.EventsTable, dynamostore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		evs, err := store.Load(ctx, o.OrderID, 1)
		if err != nil {
			t.Fatal(err)
		}
		want, err := projections.Fold(orders.NewCodec(), evs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := views.Get(ctx, o.OrderID)
		if err == nil && reflect.DeepEqual(got, want) && want.Status.Terminal() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the projector did not carry on once the table was back: item %+v (%v), fold %+v", got, err, want)
		}
	}
}
