package bootstrap_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	stypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	qtypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/messaging"
)

func TestBootstrapCreatesEverythingOnceWithTheSharedSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := awstest.Clients(t)
	n := awstest.Names(t)
	t.Cleanup(func() { _ = bootstrap.Teardown(context.Background(), c, n) })

	first, err := bootstrap.Bootstrap(ctx, c, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Created) != 8 || len(first.Existing) != 0 {
		t.Fatalf("first run: created %v, existing %v; want 8 created", first.Created, first.Existing)
	}
	second, err := bootstrap.Bootstrap(ctx, c, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Created) != 0 || len(second.Existing) != 8 {
		t.Fatalf("second run: created %v, existing %v; want nothing created", second.Created, second.Existing)
	}
	if first.ProcessingQueueURL != second.ProcessingQueueURL || first.EventsTopicARN != second.EventsTopicARN || first.ProcessingSubscribe != second.ProcessingSubscribe {
		t.Fatalf("second run returned other resources: %+v vs %+v", first, second)
	}

	ev, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(n.EventsTable)})
	if err != nil {
		t.Fatal(err)
	}
	if s := ev.Table.StreamSpecification; s == nil || !aws.ToBool(s.StreamEnabled) || s.StreamViewType != dtypes.StreamViewTypeNewImage {
		t.Fatalf("events table stream = %+v, want NEW_IMAGE", ev.Table.StreamSpecification)
	}
	if got := keyNames(ev.Table.KeySchema); !slices.Equal(got, []string{"stream_id", "version"}) {
		t.Fatalf("events key = %v", got)
	}
	ttl, err := c.DynamoDB.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(n.EventsTable)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(ttl.TimeToLiveDescription.AttributeName) != resources.IdempotencyTTLAttribute {
		t.Fatalf("TTL = %+v", ttl.TimeToLiveDescription)
	}
	rd, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(n.OrdersTable)})
	if err != nil {
		t.Fatal(err)
	}
	if got := keyNames(rd.Table.KeySchema); !slices.Equal(got, []string{"order_id"}) {
		t.Fatalf("orders key = %v", got)
	}
	idx := map[string][]string{}
	for _, g := range rd.Table.GlobalSecondaryIndexes {
		idx[aws.ToString(g.IndexName)] = keyNames(g.KeySchema)
	}
	if !slices.Equal(idx[resources.StatusIndex], []string{"status", "created_at"}) || !slices.Equal(idx[resources.CustomerIndex], []string{"customer_name", "created_at"}) {
		t.Fatalf("orders indexes = %v", idx)
	}

	qa, err := c.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(first.ProcessingQueueURL), AttributeNames: []qtypes.QueueAttributeName{qtypes.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	var redrive struct {
		Target string `json:"deadLetterTargetArn"`
		Max    any    `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(qa.Attributes["RedrivePolicy"]), &redrive); err != nil {
		t.Fatalf("redrive policy %q: %v", qa.Attributes["RedrivePolicy"], err)
	}
	if redrive.Target != first.DeadLetterQueueARN || fmtAny(redrive.Max) != "3" {
		t.Fatalf("redrive = %+v, want DLQ %s after 3", redrive, first.DeadLetterQueueARN)
	}
	if qa.Attributes["VisibilityTimeout"] != "180" {
		t.Fatalf("visibility timeout = %s", qa.Attributes["VisibilityTimeout"])
	}
	fa, err := c.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(first.StreamFailureQueueURL), AttributeNames: []qtypes.QueueAttributeName{qtypes.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fa.Attributes["MessageRetentionPeriod"], "1209600"; got != want || !slices.Contains(first.Created, n.StreamFailureQueue) {
		t.Fatalf("stream failures queue %s: retention %s s, want %s s (created: %v)", n.StreamFailureQueue, got, want, first.Created)
	}
	resolved, err := bootstrap.Resolve(ctx, c, n)
	if err != nil {
		t.Fatal(err)
	}
	if resolved.StreamFailureQueueURL != first.StreamFailureQueueURL || resolved.StreamFailureQueueARN != first.StreamFailureQueueARN || resolved.StreamFailureQueueARN == "" {
		t.Fatalf("Resolve found the failures queue at %q %q, Bootstrap made %q %q", resolved.StreamFailureQueueURL, resolved.StreamFailureQueueARN, first.StreamFailureQueueURL, first.StreamFailureQueueARN)
	}
	sa, err := c.SNS.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(first.ProcessingSubscribe)})
	if err != nil {
		t.Fatal(err)
	}
	if sa.Attributes["RawMessageDelivery"] != "true" || sa.Attributes["FilterPolicy"] != bootstrap.ProcessingFilterPolicy() {
		t.Fatalf("subscription attributes = %v", sa.Attributes)
	}
}

func fmtAny(v any) string {
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 1 && s[0] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func keyNames(ks []dtypes.KeySchemaElement) []string {
	var out []string
	for _, k := range ks {
		out = append(out, aws.ToString(k.AttributeName))
	}
	return out
}

func TestPlacedOrdersReachTheProcessingQueueAndPoisonGoesToTheDLQAfterThreeReceives(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := awstest.Clients(t)
	n := awstest.Names(t)
	t.Cleanup(func() { _ = bootstrap.Teardown(context.Background(), c, n) })
	r, err := bootstrap.Bootstrap(ctx, c, n)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(eventType, body string) {
		t.Helper()
		if _, err := c.SNS.Publish(ctx, &sns.PublishInput{
			TopicArn: aws.String(r.EventsTopicARN), Message: aws.String(body),
			MessageAttributes: map[string]stypes.MessageAttributeValue{
				messaging.AttrEventType: {DataType: aws.String("String"), StringValue: aws.String(eventType)},
			},
		}); err != nil {
			t.Fatal(err)
		}
	}
	publish("PaymentSucceeded", `{"filtered":"out"}`)
	publish("OrderPlaced", `{"raw":"body"}`)

	receive := func(url string) []qtypes.Message {
		t.Helper()
		out, err := c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		// VisibilityTimeout 0 is omitted by the SDK (zero value): make the
		// messages visible again explicitly.
		for _, m := range out.Messages {
			if _, err := c.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
				t.Fatal(err)
			}
		}
		return out.Messages
	}
	for i := 1; i <= messaging.MaxReceiveCount; i++ {
		msgs := receive(r.ProcessingQueueURL)
		if len(msgs) != 1 || aws.ToString(msgs[0].Body) != `{"raw":"body"}` {
			t.Fatalf("receive %d: %d messages %+v, want the raw OrderPlaced body only", i, len(msgs), msgs)
		}
		if a := msgs[0].MessageAttributes[messaging.AttrEventType]; aws.ToString(a.StringValue) != "OrderPlaced" {
			t.Fatalf("event_type attribute = %+v", a)
		}
	}
	if msgs := receive(r.ProcessingQueueURL); len(msgs) != 0 {
		t.Fatalf("receive %d: got %d messages, want the message moved to the DLQ", messaging.MaxReceiveCount+1, len(msgs))
	}
	if msgs := receive(r.DeadLetterQueueURL); len(msgs) != 1 || aws.ToString(msgs[0].Body) != `{"raw":"body"}` {
		t.Fatalf("DLQ holds %+v, want the poison message", msgs)
	}
}
