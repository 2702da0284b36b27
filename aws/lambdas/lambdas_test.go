package lambdas_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/aws/lambdas"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/processing"
	"github.com/orderledger/orderledger/services/sim"
)

var quiet = slog.New(slog.DiscardHandler)

func load[T any](t *testing.T, path string) T {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func deps(t *testing.T) (*lambdas.Deps, bootstrap.Report) {
	t.Helper()
	names, c := awstest.Bootstrap(t)
	d, err := lambdas.NewDeps(awstest.Config(t), names.Env, quiet)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := bootstrap.Resolve(context.Background(), c, names)
	if err != nil {
		t.Fatal(err)
	}
	return d, rep
}

const recordedOrder = "01KAY9D3J8Q6ZC2W0F7M5T4H1B"

func TestProcessorRunsTheSagaAndReportsThePoisonMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, _ := deps(t)
	ev := load[events.SQSEvent](t, "testdata/sqs-event.json")
	var placed eventstore.Event
	if err := json.Unmarshal([]byte(ev.Records[0].Body), &placed); err != nil {
		t.Fatal(err)
	}
	placed.Version = 0
	if _, err := d.Store.Append(ctx, placed.StreamID, 0, placed); err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := processing.New(processing.Config{Store: d.Store, Payment: s, Inventory: s, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := lambdas.Processor(p, quiet)(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != ev.Records[1].MessageId {
		t.Fatalf("failures = %+v, want only the poison message %s", resp.BatchItemFailures, ev.Records[1].MessageId)
	}
	got, err := d.Store.Load(ctx, recordedOrder, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[3].Type != order.TypeCompleted {
		t.Fatalf("stream after processing: %d events, last %v", len(got), got[len(got)-1].Type)
	}
	// Redelivered: nothing is appended twice.
	if _, err := lambdas.Processor(p, quiet)(ctx, events.SQSEvent{Records: ev.Records[:1]}); err != nil {
		t.Fatal(err)
	}
	if again, _ := d.Store.Load(ctx, recordedOrder, 0); len(again) != 4 {
		t.Fatalf("redelivery appended: %d events", len(again))
	}
}

func TestProjectorAppliesARecordedBatchOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, _ := deps(t)
	p, err := d.Projector()
	if err != nil {
		t.Fatal(err)
	}
	h := lambdas.Projector(p, quiet)
	ev := load[events.DynamoDBEvent](t, "testdata/stream-event.json")
	for range 2 { // the second delivery is a duplicate
		resp, err := h(ctx, ev)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("projector: %+v, %v", resp, err)
		}
	}
	v, err := d.Views.Get(ctx, recordedOrder)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != 2 || v.Status != order.StatusPending || v.PaymentID != "pay-1" || v.Amount != 1234 || v.CustomerName != "Test Customer" {
		t.Fatalf("view = %+v", v)
	}
	bad := load[events.DynamoDBEvent](t, "testdata/stream-event-malformed.json")
	resp, err := h(ctx, bad)
	if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "1100000000000000000005" {
		t.Fatalf("malformed batch: %+v, %v", resp, err)
	}
}

func TestPublisherRoutesPlacedOrdersToTheProcessingQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, rep := deps(t)
	pub, err := d.Publisher(rep.EventsTopicARN, rep.CompletedTopicARN)
	if err != nil {
		t.Fatal(err)
	}
	h := lambdas.Publisher(pub, quiet)
	resp, err := h(ctx, load[events.DynamoDBEvent](t, "testdata/stream-event.json"))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("publisher: %+v, %v", resp, err)
	}
	out, err := d.Clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(rep.ProcessingQueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("processing queue got %d messages, want the OrderPlaced only", len(out.Messages))
	}
	var env eventstore.Event
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &env); err != nil || env.Type != order.TypePlaced || env.StreamID != recordedOrder {
		t.Fatalf("message body %s: %v", aws.ToString(out.Messages[0].Body), err)
	}
	if a := out.Messages[0].MessageAttributes["event_type"]; aws.ToString(a.StringValue) != order.TypePlaced {
		t.Fatalf("event_type attribute = %+v", a)
	}
	resp, err = h(ctx, load[events.DynamoDBEvent](t, "testdata/stream-event-malformed.json"))
	if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "1100000000000000000005" {
		t.Fatalf("malformed batch: %+v, %v", resp, err)
	}
}

func TestAPIServesARecordedHTTPAPIRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, _ := deps(t)
	h := lambdas.API(api.NewRouter(api.Deps{Store: d.Store, Views: d.Views, Codec: d.Codec, Logger: quiet}))
	resp, err := h(ctx, load[events.APIGatewayV2HTTPRequest](t, "testdata/apigw-v2-place-order.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &v); err != nil || resp.StatusCode != 201 || v.Status != "Pending" {
		t.Fatalf("POST /orders/: %d %s", resp.StatusCode, resp.Body)
	}
	if resp.Headers["Location"] != "/orders/"+v.OrderID {
		t.Fatalf("Location = %q", resp.Headers["Location"])
	}
	got, err := d.Store.Load(ctx, v.OrderID, 0)
	if err != nil || len(got) != 1 || got[0].Type != order.TypePlaced {
		t.Fatalf("stored: %+v, %v", got, err)
	}
}

func TestTopicARN(t *testing.T) {
	t.Parallel()
	got, err := lambdas.TopicARN("arn:aws:lambda:us-east-1:123456789012:function:dev-order-publisher", "dev-order-events")
	if err != nil || got != "arn:aws:sns:us-east-1:123456789012:dev-order-events" {
		t.Fatalf("TopicARN = %q, %v", got, err)
	}
	if _, err := lambdas.TopicARN("dev-order-publisher", "x"); err == nil {
		t.Fatal("TopicARN accepted a name")
	}
}

// TestLazyPublisherTakesTheTopicsFromConfigOrTheInvocation: with the topic
// ARNs in its configuration the deployed publisher needs nothing more; with
// none it derives them from the invoked function's ARN, and without a
// Lambda context it says so.
func TestLazyPublisherTakesTheTopicsFromConfigOrTheInvocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, rep := deps(t)
	batch := load[events.DynamoDBEvent](t, "testdata/stream-event.json")
	received := func() int {
		t.Helper()
		out, err := d.Clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(rep.ProcessingQueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if _, err := d.Clients.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(rep.ProcessingQueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
		return len(out.Messages)
	}

	d.Config.EventsTopicARN, d.Config.CompletedTopicARN = rep.EventsTopicARN, rep.CompletedTopicARN
	if resp, err := lambdas.LazyPublisher(d)(ctx, batch); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("publisher with configured topics: %+v, %v", resp, err)
	}
	if n := received(); n != 1 {
		t.Fatalf("configured topics: processing queue got %d messages, want 1", n)
	}

	d.Config.EventsTopicARN, d.Config.CompletedTopicARN = "", ""
	if _, err := lambdas.LazyPublisher(d)(ctx, batch); err == nil || !strings.Contains(err.Error(), "no Lambda context") {
		t.Fatalf("publisher without topics or Lambda context: %v", err)
	}
	fn := strings.Replace(rep.EventsTopicARN, ":sns:", ":lambda:", 1)
	fn = fn[:strings.LastIndex(fn, ":")+1] + "function:" + d.Names.PublisherFunc
	lctx := lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{InvokedFunctionArn: fn})
	if resp, err := lambdas.LazyPublisher(d)(lctx, batch); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("publisher deriving topics from %s: %+v, %v", fn, resp, err)
	}
	if n := received(); n != 1 {
		t.Fatalf("derived topics: processing queue got %d messages, want 1", n)
	}
}
