package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	qtypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/internal/resources"
)

// awsEnv returns a command environment pointing at the emulator with a fresh
// resource prefix.
func awsEnv(t *testing.T, extra map[string]string) (*env, *syncBuffer, *syncBuffer, string) {
	t.Helper()
	endpoint := awstest.Endpoint(t)
	name := awstest.UniqueEnv()
	vars := map[string]string{"AWS_ENDPOINT_URL": endpoint, "LEDGER_ENV": name}
	for k, v := range extra {
		vars[k] = v
	}
	var out, errb syncBuffer
	return &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}, &out, &errb, name
}

// startAWSServer bootstraps a fresh environment with `ledger aws bootstrap`
// and serves it in process; it returns the API's base URL.
func startAWSServer(t *testing.T, extraEnv map[string]string, meter *awstest.Meter, args ...string) (string, resources.Names, awsconfig.Clients) {
	t.Helper()
	e, out, errb, name := awsEnv(t, extraEnv)
	names := resources.For(name)
	clients := awstest.Clients(t)
	var hooks awsHooks
	if meter != nil {
		hooks.Instrument = meter.Attach
	}
	t.Cleanup(func() { _ = bootstrap.Teardown(context.Background(), clients, names) })
	if code := run(context.Background(), e, []string{"aws", "bootstrap", "--env", name}); code != 0 {
		t.Fatalf("aws bootstrap: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "created  "+names.EventsTable) {
		t.Fatalf("bootstrap output:\n%s", out.String())
	}
	if meter != nil {
		for _, table := range []string{names.EventsTable, names.OrdersTable} {
			if err := meter.Describe(context.Background(), clients.DynamoDB, table); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	o := serveOptions{Addr: "127.0.0.1:0", Backend: "aws", Workers: 1, LocalMappings: true, RetryBackoff: time.Second, Logger: awsTestLogger(t)}
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "--sim-payment-decline-rate":
			fmt.Sscan(args[i+1], &o.Sim.PaymentDeclineRate)
		case "--sim-payment-error-rate":
			fmt.Sscan(args[i+1], &o.Sim.PaymentErrorRate)
		case "--sim-inventory-stock":
			fmt.Sscan(args[i+1], &o.Sim.InventoryStock)
		case "--sim-refund-error-rate":
			fmt.Sscan(args[i+1], &o.Sim.RefundErrorRate)
		default:
			t.Fatalf("startAWSServer: unsupported flag %s", args[i])
		}
	}
	if len(args)%2 != 0 {
		t.Fatalf("startAWSServer: flags come in pairs: %v", args)
	}
	go func() { done <- serveAWSWith(ctx, e, o, hooks) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	re := regexp.MustCompile(`serving on (http://[0-9.:]+)`)
	for range 600 {
		if m := re.FindStringSubmatch(errb.String()); m != nil {
			return m[1], names, clients
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v: %s", err, errb.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("server did not start: %s", errb.String())
	return "", names, clients
}

func placeSeedOrder(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Post(base+"/orders/", "application/json", strings.NewReader(`{
    "customer_name": "Test Customer",
    "product_name": "Test Product",
    "quantity": 1
  }`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusCreated || body.OrderID == "" {
		t.Fatalf("POST /orders/: %d %+v %v", resp.StatusCode, body, err)
	}
	return body.OrderID
}

// waitItem reads the read table until the order's item has one of the
// statuses (the pipeline is asynchronous), then returns it raw.
func waitItem(t *testing.T, c awsconfig.Clients, table, id string, statuses ...string) map[string]dtypes.AttributeValue {
	t.Helper()
	var last map[string]dtypes.AttributeValue
	for range 600 {
		out, err := c.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{
			TableName: aws.String(table), Key: map[string]dtypes.AttributeValue{"order_id": &dtypes.AttributeValueMemberS{Value: id}},
		})
		if err != nil {
			t.Fatal(err)
		}
		last = out.Item
		if s, ok := out.Item["status"].(*dtypes.AttributeValueMemberS); ok {
			for _, want := range statuses {
				if s.Value == want {
					return out.Item
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("order %s never reached %v; last item %v", id, statuses, last)
	return nil
}

func str(item map[string]dtypes.AttributeValue, k string) string {
	if s, ok := item[k].(*dtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	if n, ok := item[k].(*dtypes.AttributeValueMemberN); ok {
		return "N:" + n.Value
	}
	return fmt.Sprintf("%T", item[k])
}

// TestServeAWSSeedOrderCompletes is the seed's walk-through on the AWS
// backend: bootstrap, serve, POST /orders/, and the read table's item (as
// `aws dynamodb get-item` shows it) reaches Completed with the seed's
// attributes. It also measures what one order costs in requests.
func TestServeAWSSeedOrderCompletes(t *testing.T) {
	t.Parallel()
	meter := awstest.NewMeter(nil)
	base, names, c := startAWSServer(t, nil, meter)
	before := meter.Snapshot()
	id := placeSeedOrder(t, base)
	item := waitItem(t, c, names.OrdersTable, id, "Completed")
	// The outcome is published after it is projected or before; wait for
	// both publishes (OrderPlaced, OrderCompleted) before measuring.
	for range 600 {
		if c := meter.Snapshot().Sub(before).Calls; c["SNS.Publish"]+c["SNS.PublishBatch"] >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	reportOrderCost(t, meter.Snapshot().Sub(before), names)
	logEventItemSizes(t, c.DynamoDB, names.EventsTable, id)
	want := map[string]string{"order_id": id, "customer_name": "Test Customer", "product_name": "Test Product", "quantity": "N:1", "status": "Completed"}
	for k, w := range want {
		if got := str(item, k); got != w {
			t.Errorf("item %s = %s, want %s", k, got, w)
		}
	}
	resp, err := http.Get(base + "/orders/" + id)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Status  string `json:"status"`
		Version int    `json:"version"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if v.Status != "Completed" || v.Version != 4 {
		t.Fatalf("GET /orders/%s = %+v, want Completed at version 4", id, v)
	}
}

// TestServeAWSFailurePaths: a declined payment ends Failed, and a poison
// message is dead-lettered after 3 receives while good orders still flow.
func TestServeAWSFailurePaths(t *testing.T) {
	t.Parallel()
	base, names, c := startAWSServer(t, nil, nil, "--sim-payment-decline-rate", "1")
	ctx := context.Background()
	q, err := c.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(names.ProcessingQueue)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("not an event")}); err != nil {
		t.Fatal(err)
	}
	id := placeSeedOrder(t, base)
	item := waitItem(t, c, names.OrdersTable, id, "Failed", "Completed")
	if str(item, "status") != "Failed" || !strings.Contains(strings.ToLower(str(item, "failure_reason")), "declin") {
		t.Fatalf("declined order: status %s reason %q", str(item, "status"), str(item, "failure_reason"))
	}
	dlq, err := c.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(names.DeadLetterQueue)})
	if err != nil {
		t.Fatal(err)
	}
	for range 300 {
		out, err := c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: dlq.QueueUrl, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []qtypes.MessageSystemAttributeName{qtypes.MessageSystemAttributeNameApproximateReceiveCount}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) > 0 {
			if got := aws.ToString(out.Messages[0].Body); got != "not an event" {
				t.Fatalf("dead letter %q", got)
			}
			return
		}
	}
	t.Fatal("the poison message never reached the dead-letter queue")
}

// TestServeAWSTransientFailuresEndFailedAfterThreeAttempts: a payment
// service that always fails transiently is retried by redelivery, each
// failed try recorded, and the third ends the order Failed with attempts 3.
// A charge may still have landed unseen, so the payment request's void is
// owed; the void fails too (the service never answers), so the message is
// dead-lettered for the operator rather than dropped.
func TestServeAWSTransientFailuresEndFailedAfterThreeAttempts(t *testing.T) {
	t.Parallel()
	base, names, c := startAWSServer(t, nil, nil, "--sim-payment-error-rate", "1")
	id := placeSeedOrder(t, base)
	waitItem(t, c, names.OrdersTable, id, "Failed", "Completed")
	resp, err := http.Get(base + "/orders/" + id + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `"OrderFailed"`) || !strings.Contains(string(b), `"attempts":3`) ||
		strings.Count(string(b), `"AttemptFailed"`) < 3 || strings.Contains(string(b), `"PaymentVoided"`) {
		t.Fatalf("history of %s, want three failed tries, OrderFailed with attempts 3 and no void yet:\n%s", id, b)
	}
	dlq, err := c.SQS.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(names.DeadLetterQueue)})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, err := c.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: dlq.QueueUrl, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) > 0 {
			if got := aws.ToString(out.Messages[0].MessageAttributes["order_id"].StringValue); got != id {
				t.Fatalf("the dead letter names order %q, want %s", got, id)
			}
			return
		}
	}
	t.Fatal("the message whose void is owed never reached the dead-letter queue")
}

func TestServeAWSWithoutBootstrapSaysSo(t *testing.T) {
	t.Parallel()
	e, _, _, _ := awsEnv(t, nil)
	err := serveAWSWith(context.Background(), e, serveOptions{Addr: "127.0.0.1:0", Workers: 1, Logger: awsTestLogger(t)}, awsHooks{})
	if err == nil || !strings.Contains(err.Error(), "ledger aws bootstrap") {
		t.Fatalf("serve without resources: %v", err)
	}
	var u usageError
	if errors.As(err, &u) {
		t.Fatalf("missing resources reported as a usage error: %v", err)
	}
}

func TestAWSBootstrapRejectsBadEnv(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCmd(context.Background(), "aws", "bootstrap", "--env", "Bad_Name")
	if code != 2 || !strings.Contains(errOut, "--env") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// awsTestLogger collects the server's log and prints it when the test fails.
func awsTestLogger(t *testing.T) *slog.Logger {
	var buf syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// reportOrderCost turns the metered usage of one order into the cost of a
// million orders. Polling by the local event-source mappings is left out:
// Lambda reads DynamoDB streams for free, and SQS is charged one receive and
// one delete per message here (what an event-source mapping does per batch,
// at worst per message).
func reportOrderCost(t *testing.T, u awstest.Usage, names resources.Names) {
	t.Helper()
	events, views := u.Tables[names.EventsTable], u.Tables[names.OrdersTable]
	published := u.Calls["SNS.Publish"] + u.Calls["SNS.PublishBatch"]
	if published != 2 || events.Writes == 0 || views.Writes == 0 {
		t.Fatalf("metered usage of one order looks wrong: %+v", u)
	}
	// The request budget of the seed order: a change that makes it cost
	// more requests fails here. Events: one single-item put each (no
	// transaction: processing.Config.OneStepPerAppend), 1 WRU each. The
	// processor reads the stream once. The read table: at most one write
	// per event, the first 3 WRU (the item and its two index entries), a
	// status change 4 (the status-index entry deleted and put again), and a
	// view read only before a write that is not the first.
	const records = 4
	insert, update := 3.0, 4.0
	switch {
	case events.Writes != records || events.WriteUnits != records || u.Calls["DynamoDB.TransactWriteItems"] != 0:
		t.Errorf("events table: %d items written for %v WRU (transactions %d); want %d single puts for %d WRU", events.Writes, events.WriteUnits, u.Calls["DynamoDB.TransactWriteItems"], records, records)
	case u.Calls["DynamoDB.Query"] > 1:
		t.Errorf("%d Queries; want the stream read once", u.Calls["DynamoDB.Query"])
	case views.Writes > records || views.WriteUnits > insert+update*float64(views.Writes-1):
		t.Errorf("read table: %d writes for %v WRU; want at most %d, %v for the first and at most %v after", views.Writes, views.WriteUnits, records, insert, update)
	case u.Calls["DynamoDB.GetItem"] > views.Writes:
		t.Errorf("%d GetItems for %d read-table writes", u.Calls["DynamoDB.GetItem"], views.Writes)
	}
	if views.Writes > 1 {
		update = (views.WriteUnits - insert) / float64(views.Writes-1)
	}
	var b strings.Builder
	awstest.WriteCalls(&b, u)

	// Alone: the order is the only traffic, so nothing is shared. Lambda:
	// the API, the processor, and a projector and a publisher invocation
	// per stream record at worst; 50 ms billed at 256 MB each (assumed).
	alone := awstest.Measured(u)
	alone.SQSRequests = 3 // SNS's delivery, one receive, one delete
	alone.LambdaInvocations = 1 + 1 + 2*records
	alone.LambdaGBSeconds = alone.LambdaInvocations * 0.05 * 0.25
	alone.HTTPRequests = 1
	fmt.Fprintf(&b, "\nalone (the only order, nothing batched):\n")
	awstest.WriteTable(&b, awstest.Default.PerMillion(alone))

	// Loaded: the model of BENCHMARKS.md at its stated load.
	load := awstest.Load{OrdersPerSecond: 100, StreamPollsPerSecond: 4, PublisherBatchSize: 100, ProjectorBatchSize: 1000, ProjectorWindow: 2,
		OrderSpan: 0.5, ProcessorBatchSize: 10, APISeconds: 0.05, ProcessorSeconds: 0.1, StreamBatchSeconds: 0.2, MemoryGB: 0.125}
	seed := awstest.SeedOrder{StreamRecords: records, Published: float64(published), EventWriteUnits: events.WriteUnits,
		ViewInsertUnits: insert, ViewUpdateUnits: update, ReadUnits: u.ReadUnits}
	loaded := awstest.Default.PerMillion(load.Model(seed))
	fmt.Fprintf(&b, "\nat %v orders/s (%+v):\n", load.OrdersPerSecond, load)
	awstest.WriteTable(&b, loaded)
	t.Logf("one order on the AWS backend (prices %s):\n%s", awstest.Default.Dated, b.String())
	if total := awstest.Total(loaded); total > 8 {
		t.Errorf("modelled cost $%.2f per million orders, over the $8 budget", total)
	}
	if path := os.Getenv("LEDGER_COST_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// logEventItemSizes logs the billed size of each of the order's event
// items and what the audit chain (hash, prev_hash) adds to it: an item
// over 1 KiB would cost 2 WRU instead of 1 (BENCHMARKS.md, "Cost per
// order").
func logEventItemSizes(t *testing.T, db *dynamodb.Client, table, id string) {
	t.Helper()
	out, err := db.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(table),
		KeyConditionExpression:    aws.String("stream_id = :s"),
		ExpressionAttributeValues: map[string]dtypes.AttributeValue{":s": &dtypes.AttributeValueMemberS{Value: id}}})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []string
	for _, it := range out.Items {
		chain := map[string]dtypes.AttributeValue{}
		for _, k := range []string{"hash", "prev_hash"} {
			if v, ok := it[k]; ok {
				chain[k] = v
			}
		}
		size := awstest.ItemSize(it)
		sizes = append(sizes, fmt.Sprintf("%d (chain %d)", size, awstest.ItemSize(chain)))
		if size > 1024 {
			t.Errorf("an event item of the seed order is %d bytes: over 1 KiB it costs 2 WRU", size)
		}
	}
	t.Logf("event items of the seed order, billed bytes: %s", strings.Join(sizes, ", "))
}

// TestServeAWSOutOfStockRefundsThenFails: on the AWS backend too, an order
// charged but not reservable is refunded (the saga's compensation) and
// fails at the inventory step, while the order before it completed.
func TestServeAWSOutOfStockRefundsThenFails(t *testing.T) {
	t.Parallel()
	base, names, c := startAWSServer(t, nil, nil, "--sim-inventory-stock", "1")
	first := placeSeedOrder(t, base)
	if item := waitItem(t, c, names.OrdersTable, first, "Failed", "Completed"); str(item, "status") != "Completed" {
		t.Fatalf("first order: %s, want Completed", str(item, "status"))
	}
	second := placeSeedOrder(t, base)
	item := waitItem(t, c, names.OrdersTable, second, "Failed", "Completed")
	if str(item, "status") != "Failed" || !strings.Contains(str(item, "failure_reason"), "out of stock") {
		t.Fatalf("second order: status %s reason %q, want Failed out of stock", str(item, "status"), str(item, "failure_reason"))
	}
	resp, err := http.Get(base + "/orders/" + second + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Events []struct{ Type string } `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range h.Events {
		types = append(types, e.Type)
	}
	want := []string{"OrderPlaced", "PaymentSucceeded", "InventoryReservationFailed", "PaymentRefunded", "OrderFailed"}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Fatalf("history %v, want %v", types, want)
	}
}
