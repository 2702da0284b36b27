package awsmsg_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/messaging/awsmsg"
)

// TestTraceParentAttribute: on moto, Send and Publish (through an SNS
// subscription with raw delivery) carry the traceparent of the span in
// ctx as the traceparent message attribute, and a caller's own wins.
func TestTraceParentAttribute(t *testing.T) {
	c := awstest.Clients(t)
	ctx := context.Background()
	env := awstest.UniqueEnv()
	q, arn := queue(t, c, env+"-q", nil)
	out, err := c.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(env + "-topic")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.SNS.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: out.TopicArn}) })
	if _, err := c.SNS.Subscribe(ctx, &sns.SubscribeInput{TopicArn: out.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(arn),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	topic, err := awsmsg.NewTopic(c.SNS, aws.ToString(out.TopicArn))
	if err != nil {
		t.Fatal(err)
	}
	const fromCtx = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	tctx := tracing.Continue(ctx, fromCtx)
	attrs := map[string]string{messaging.AttrEventType: "OrderPlaced"}
	if _, err := q.Send(tctx, []byte("sent"), attrs); err != nil {
		t.Fatal(err)
	}
	if _, err := topic.Publish(tctx, []byte("published"), attrs); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Send(tctx, []byte("given"), map[string]string{messaging.AttrTraceParent: given}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Send(ctx, []byte("untraced"), attrs); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"sent": fromCtx, "published": fromCtx, "given": given, "untraced": ""}
	got := map[string]string{}
	for deadline := time.Now().Add(30 * time.Second); len(got) < len(want) && time.Now().Before(deadline); {
		msgs, err := q.Receive(ctx, 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			got[string(m.Body)] = m.Attributes[messaging.AttrTraceParent]
			_ = q.Delete(ctx, m.ReceiptHandle)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("received %v, want %d messages", got, len(want))
	}
	for body, tp := range want {
		if got[body] != tp {
			t.Errorf("%s: traceparent %q, want %q", body, got[body], tp)
		}
	}
}
