// Package awsmsg implements the messaging ports on AWS: Queue on Amazon SQS
// and Topic on Amazon SNS (subscriptions with raw message delivery, so a
// queue receives the published body and attributes unchanged). Message
// attributes travel as SQS/SNS String attributes; Send and Publish add the
// traceparent of the span in ctx as the traceparent attribute
// (messaging.AttrTraceParent) when the caller's attributes carry none, so
// a consumer continues the sender's trace.
package awsmsg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	stypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	qtypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/messaging"
)

// Queue is an SQS queue. Safe for concurrent use.
type Queue struct {
	c   *sqs.Client
	url string
}

var _ messaging.Queue = (*Queue)(nil)

// NewQueue returns the queue at url.
func NewQueue(c *sqs.Client, url string) (*Queue, error) {
	if c == nil || url == "" {
		return nil, errors.New("messaging/awsmsg: new queue: an SQS client and a queue URL are required")
	}
	return &Queue{c: c, url: url}, nil
}

// QueueNamed looks the queue up by name.
func QueueNamed(ctx context.Context, c *sqs.Client, name string) (*Queue, error) {
	out, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("messaging/awsmsg: queue %s: %w", name, err)
	}
	return NewQueue(c, aws.ToString(out.QueueUrl))
}

// URL returns the queue's URL.
func (q *Queue) URL() string { return q.url }

// Send implements messaging.Queue.
func (q *Queue) Send(ctx context.Context, body []byte, attrs map[string]string) (string, error) {
	in := &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(string(body))}
	attrs = tracing.WithMessageAttr(ctx, attrs, messaging.AttrTraceParent)
	if len(attrs) > 0 {
		in.MessageAttributes = map[string]qtypes.MessageAttributeValue{}
		for k, v := range attrs {
			in.MessageAttributes[k] = qtypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	out, err := q.c.SendMessage(ctx, in)
	if err != nil {
		return "", fmt.Errorf("messaging/awsmsg: send: %w", err)
	}
	return aws.ToString(out.MessageId), nil
}

// Receive implements messaging.Queue with SQS long polling (wait rounded up
// to whole seconds, at most 20).
func (q *Queue) Receive(ctx context.Context, limit int, wait time.Duration) ([]messaging.Message, error) {
	waitSec := int32(min((wait+time.Second-1)/time.Second, 20))
	return q.receiveInput(ctx, &sqs.ReceiveMessageInput{WaitTimeSeconds: waitSec}, limit)
}

// receive receives without waiting, with the given visibility timeout.
func (q *Queue) receive(ctx context.Context, limit int, visibility time.Duration) ([]messaging.Message, error) {
	return q.receiveInput(ctx, &sqs.ReceiveMessageInput{VisibilityTimeout: int32(visibility / time.Second)}, limit)
}

func (q *Queue) receiveInput(ctx context.Context, in *sqs.ReceiveMessageInput, limit int) ([]messaging.Message, error) {
	out, err := q.c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:              aws.String(q.url),
		MaxNumberOfMessages:   int32(min(10, max(1, limit))),
		WaitTimeSeconds:       in.WaitTimeSeconds,
		VisibilityTimeout:     in.VisibilityTimeout,
		MessageAttributeNames: []string{"All"},
		MessageSystemAttributeNames: []qtypes.MessageSystemAttributeName{
			qtypes.MessageSystemAttributeNameApproximateReceiveCount, qtypes.MessageSystemAttributeNameSentTimestamp,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("messaging/awsmsg: receive: %w", err)
	}
	msgs := make([]messaging.Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msgs = append(msgs, FromSQS(aws.ToString(m.MessageId), aws.ToString(m.Body), aws.ToString(m.ReceiptHandle), m.Attributes, stringAttrs(m.MessageAttributes)))
	}
	return msgs, nil
}

func stringAttrs(in map[string]qtypes.MessageAttributeValue) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		if v.StringValue != nil {
			out[k] = *v.StringValue
		}
	}
	return out
}

// FromSQS builds a messaging.Message from the parts of an SQS message (as
// the SDK or a Lambda event carries them): system attributes give the
// receive count and the sent time.
func FromSQS(id, body, receipt string, system, attrs map[string]string) messaging.Message {
	m := messaging.Message{ID: id, Body: []byte(body), ReceiptHandle: receipt, Attributes: attrs, ReceiveCount: 1}
	if n, err := strconv.Atoi(system[string(qtypes.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil && n > 0 {
		m.ReceiveCount = n
	}
	if ms, err := strconv.ParseInt(system[string(qtypes.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		m.SentAt = time.UnixMilli(ms).UTC()
	}
	if m.Attributes == nil {
		m.Attributes = map[string]string{}
	}
	return m
}

// invalidReceipt maps SQS's receipt errors to messaging.ErrInvalidReceipt.
func invalidReceipt(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight":
		return true
	}
	return false
}

// Delete implements messaging.Queue.
func (q *Queue) Delete(ctx context.Context, receiptHandle string) error {
	_, err := q.c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(receiptHandle)})
	if err != nil && !invalidReceipt(err) {
		return fmt.Errorf("messaging/awsmsg: delete: %w", err)
	}
	return nil
}

// ChangeVisibility implements messaging.Queue.
func (q *Queue) ChangeVisibility(ctx context.Context, receiptHandle string, d time.Duration) error {
	_, err := q.c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(receiptHandle), VisibilityTimeout: int32(min(d/time.Second, 12*3600)),
	})
	if invalidReceipt(err) {
		return fmt.Errorf("messaging/awsmsg: change visibility: %w", messaging.ErrInvalidReceipt)
	}
	if err != nil {
		return fmt.Errorf("messaging/awsmsg: change visibility: %w", err)
	}
	return nil
}

// Topic is an SNS topic. Safe for concurrent use.
type Topic struct {
	c   *sns.Client
	arn string
}

var _ messaging.BatchTopic = (*Topic)(nil)

// NewTopic returns the topic with ARN arn.
func NewTopic(c *sns.Client, arn string) (*Topic, error) {
	if c == nil || arn == "" {
		return nil, errors.New("messaging/awsmsg: new topic: an SNS client and a topic ARN are required")
	}
	return &Topic{c: c, arn: arn}, nil
}

// ARN returns the topic's ARN.
func (t *Topic) ARN() string { return t.arn }

// Publish implements messaging.Topic.
func (t *Topic) Publish(ctx context.Context, body []byte, attrs map[string]string) (string, error) {
	in := &sns.PublishInput{TopicArn: aws.String(t.arn), Message: aws.String(string(body))}
	attrs = tracing.WithMessageAttr(ctx, attrs, messaging.AttrTraceParent)
	if len(attrs) > 0 {
		in.MessageAttributes = map[string]stypes.MessageAttributeValue{}
		for k, v := range attrs {
			in.MessageAttributes[k] = stypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	out, err := t.c.Publish(ctx, in)
	if err != nil {
		return "", fmt.Errorf("messaging/awsmsg: publish: %w", err)
	}
	return aws.ToString(out.MessageId), nil
}

// SNS's PublishBatch limits: entries per request, and bytes of all the
// entries' messages and attributes together.
const (
	batchEntries = 10
	batchBytes   = 256 * 1024
)

// PublishBatch implements messaging.BatchTopic with SNS PublishBatch
// requests of up to 10 messages and 256 KiB, in order.
func (t *Topic) PublishBatch(ctx context.Context, msgs []messaging.Outgoing) (int, error) {
	for done := 0; done < len(msgs); {
		var entries []stypes.PublishBatchRequestEntry
		size := 0
		for i := done; i < len(msgs) && len(entries) < batchEntries; i++ {
			n := len(msgs[i].Body)
			for k, v := range msgs[i].Attrs {
				n += len(k) + len("String") + len(v)
			}
			if len(entries) > 0 && size+n > batchBytes {
				break
			}
			size += n
			e := stypes.PublishBatchRequestEntry{Id: aws.String(strconv.Itoa(i - done)), Message: aws.String(string(msgs[i].Body))}
			if len(msgs[i].Attrs) > 0 {
				e.MessageAttributes = map[string]stypes.MessageAttributeValue{}
				for k, v := range msgs[i].Attrs {
					e.MessageAttributes[k] = stypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
				}
			}
			entries = append(entries, e)
		}
		out, err := t.c.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(t.arn), PublishBatchRequestEntries: entries})
		if err != nil {
			return done, fmt.Errorf("messaging/awsmsg: publish batch: %w", err)
		}
		if len(out.Failed) > 0 {
			first := len(entries)
			var ferr error
			for _, f := range out.Failed {
				if i, cerr := strconv.Atoi(aws.ToString(f.Id)); cerr == nil && i < first {
					first = i
					ferr = fmt.Errorf("messaging/awsmsg: publish batch: entry %d: %s: %s", done+i, aws.ToString(f.Code), aws.ToString(f.Message))
				}
			}
			if ferr == nil {
				ferr = fmt.Errorf("messaging/awsmsg: publish batch: %d entries failed", len(out.Failed))
				first = 0
			}
			return done + first, ferr
		}
		done += len(entries)
	}
	return len(msgs), nil
}
