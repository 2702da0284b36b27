// Package localmapping stands in for AWS Lambda's event-source mappings when
// orderledger runs on AWS services from one process (`ledger serve --backend
// aws`, and the tests against moto): it polls a DynamoDB stream or an SQS
// queue, wraps what it reads in the aws-lambda-go event types and calls the
// same handler functions the deployed Lambdas run (package lambdas), with
// the same partial-batch-failure contract.
//
// Streams are polled with a fresh GetShardIterator(AFTER_SEQUENCE_NUMBER)
// on every poll (TRIM_HORIZON the first time) and records are de-duplicated
// by sequence number: a held NextShardIterator was seen to return phantom
// records and miss later ones on the emulator.
package localmapping

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	qtypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderledger/orderledger/aws/lambdas"
)

// Stream maps a DynamoDB stream to a stream handler.
type Stream struct {
	Client    *dynamodbstreams.Client
	StreamARN string
	Handler   lambdas.StreamHandler
	// Name names the mapping in logs.
	Name string
	// BatchSize is the most records per handler call (0: 100).
	BatchSize int
	// Interval is the wait after a poll that found nothing or failed (0: 200ms).
	Interval time.Duration
	Logger   *slog.Logger
	// Region is stamped on records (0: us-east-1).
	Region string

	last map[string]string // shard ID -> last sequence number handled
}

// Run polls until ctx ends, then returns nil.
func (s *Stream) Run(ctx context.Context) error {
	if s.Client == nil || s.StreamARN == "" || s.Handler == nil {
		return errors.New("localmapping: stream: Client, StreamARN and Handler are required")
	}
	if s.Interval <= 0 {
		s.Interval = 200 * time.Millisecond
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	for ctx.Err() == nil {
		n, err := s.Poll(ctx)
		if err != nil && ctx.Err() == nil {
			s.Logger.Error("localmapping: stream poll failed", "mapping", s.Name, "err", err)
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(s.Interval):
			}
		}
	}
	return nil
}

// Poll reads each shard once from after its last handled record and hands
// what it found to the handler. It returns how many records were handled.
func (s *Stream) Poll(ctx context.Context) (int, error) {
	if s.last == nil {
		s.last = map[string]string{}
	}
	if s.BatchSize <= 0 || s.BatchSize > 1000 {
		s.BatchSize = 100
	}
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	desc, err := s.Client.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(s.StreamARN)})
	if err != nil {
		return 0, fmt.Errorf("localmapping: describe stream: %w", err)
	}
	total := 0
	for _, sh := range desc.StreamDescription.Shards {
		id := aws.ToString(sh.ShardId)
		in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(s.StreamARN), ShardId: sh.ShardId, ShardIteratorType: stypes.ShardIteratorTypeTrimHorizon}
		if last := s.last[id]; last != "" {
			in.ShardIteratorType, in.SequenceNumber = stypes.ShardIteratorTypeAfterSequenceNumber, aws.String(last)
		}
		it, err := s.Client.GetShardIterator(ctx, in)
		if err != nil {
			return total, fmt.Errorf("localmapping: shard iterator %s: %w", id, err)
		}
		out, err := s.Client.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(int32(s.BatchSize))})
		if err != nil {
			return total, fmt.Errorf("localmapping: get records %s: %w", id, err)
		}
		var batch events.DynamoDBEvent
		for _, r := range out.Records {
			rec := s.record(r)
			if last := s.last[id]; last != "" && !seqLess(last, rec.Change.SequenceNumber) {
				continue // already handled
			}
			batch.Records = append(batch.Records, rec)
		}
		if len(batch.Records) == 0 {
			continue
		}
		resp, err := s.Handler(ctx, batch)
		if err != nil {
			return total, fmt.Errorf("localmapping: %s handler: %w", s.Name, err)
		}
		done := len(batch.Records)
		if len(resp.BatchItemFailures) > 0 {
			failed := resp.BatchItemFailures[0].ItemIdentifier
			for _, f := range resp.BatchItemFailures[1:] {
				if seqLess(f.ItemIdentifier, failed) {
					failed = f.ItemIdentifier
				}
			}
			done = 0
			for done < len(batch.Records) && seqLess(batch.Records[done].Change.SequenceNumber, failed) {
				done++
			}
		}
		if done > 0 {
			s.last[id] = batch.Records[done-1].Change.SequenceNumber
		}
		total += done
		if done < len(batch.Records) {
			return total, fmt.Errorf("localmapping: %s handler reported a failure at %s; retrying", s.Name, batch.Records[done].Change.SequenceNumber)
		}
	}
	return total, nil
}

func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func (s *Stream) record(r stypes.Record) events.DynamoDBEventRecord {
	out := events.DynamoDBEventRecord{
		AWSRegion: s.Region, EventID: aws.ToString(r.EventID), EventName: string(r.EventName),
		EventSource: "aws:dynamodb", EventVersion: aws.ToString(r.EventVersion), EventSourceArn: s.StreamARN,
	}
	if d := r.Dynamodb; d != nil {
		out.Change = events.DynamoDBStreamRecord{
			Keys: attrMap(d.Keys), NewImage: attrMap(d.NewImage), OldImage: attrMap(d.OldImage),
			SequenceNumber: aws.ToString(d.SequenceNumber), SizeBytes: aws.ToInt64(d.SizeBytes),
			StreamViewType: string(d.StreamViewType),
		}
		if d.ApproximateCreationDateTime != nil {
			out.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *d.ApproximateCreationDateTime}
		}
	}
	return out
}

func attrMap(in map[string]stypes.AttributeValue) map[string]events.DynamoDBAttributeValue {
	if in == nil {
		return nil
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(in))
	for k, v := range in {
		out[k] = attr(v)
	}
	return out
}

func attr(v stypes.AttributeValue) events.DynamoDBAttributeValue {
	switch v := v.(type) {
	case *stypes.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value)
	case *stypes.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value)
	case *stypes.AttributeValueMemberB:
		return events.NewBinaryAttribute(v.Value)
	case *stypes.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value)
	case *stypes.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value)
	case *stypes.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(v.Value)
	case *stypes.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(v.Value)
	case *stypes.AttributeValueMemberM:
		return events.NewMapAttribute(attrMap(v.Value))
	case *stypes.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, e := range v.Value {
			l[i] = attr(e)
		}
		return events.NewListAttribute(l)
	}
	return events.NewNullAttribute()
}

// Queue maps an SQS queue to a queue handler.
type Queue struct {
	Client   *sqs.Client
	QueueURL string
	QueueARN string
	Handler  lambdas.QueueHandler
	Name     string
	// BatchSize is the most messages per handler call, 1..10 (0: 10).
	BatchSize int
	// FailureVisibility, when positive, is how long a failed message stays
	// invisible before it is retried; zero leaves the queue's visibility
	// timeout in charge, as a deployed Lambda does.
	FailureVisibility time.Duration
	Logger            *slog.Logger
	Region            string
}

// Run polls until ctx ends, then returns nil.
func (q *Queue) Run(ctx context.Context) error {
	if q.Client == nil || q.QueueURL == "" || q.Handler == nil {
		return errors.New("localmapping: queue: Client, QueueURL and Handler are required")
	}
	if q.Logger == nil {
		q.Logger = slog.New(slog.DiscardHandler)
	}
	for ctx.Err() == nil {
		if _, err := q.Poll(ctx, time.Second); err != nil && ctx.Err() == nil {
			q.Logger.Error("localmapping: queue poll failed", "mapping", q.Name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// Poll receives one batch (long polling up to wait), hands it to the handler,
// deletes what succeeded and returns how many messages it received.
func (q *Queue) Poll(ctx context.Context, wait time.Duration) (int, error) {
	batch := q.BatchSize
	if batch <= 0 || batch > 10 {
		batch = 10
	}
	region := q.Region
	if region == "" {
		region = "us-east-1"
	}
	out, err := q.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(q.QueueURL), MaxNumberOfMessages: int32(batch), WaitTimeSeconds: int32((wait + time.Second - 1) / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []qtypes.MessageSystemAttributeName{qtypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return 0, fmt.Errorf("localmapping: receive: %w", err)
	}
	if len(out.Messages) == 0 {
		return 0, nil
	}
	var ev events.SQSEvent
	for _, m := range out.Messages {
		attrs := map[string]events.SQSMessageAttribute{}
		for k, v := range m.MessageAttributes {
			attrs[k] = events.SQSMessageAttribute{StringValue: v.StringValue, BinaryValue: v.BinaryValue, DataType: aws.ToString(v.DataType)}
		}
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes, MessageAttributes: attrs,
			EventSource: "aws:sqs", EventSourceARN: q.QueueARN, AWSRegion: region,
		})
	}
	resp, err := q.Handler(ctx, ev)
	failed := map[string]bool{}
	if err != nil {
		// The whole batch failed, as with a Lambda returning an error.
		q.Logger.Error("localmapping: queue handler failed", "mapping", q.Name, "err", err)
		for _, r := range ev.Records {
			failed[r.MessageId] = true
		}
	}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var del []qtypes.DeleteMessageBatchRequestEntry
	for i, r := range ev.Records {
		if failed[r.MessageId] {
			if q.FailureVisibility > 0 {
				if _, err := q.Client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
					QueueUrl: aws.String(q.QueueURL), ReceiptHandle: aws.String(r.ReceiptHandle),
					VisibilityTimeout: int32((q.FailureVisibility + time.Second - 1) / time.Second),
				}); err != nil {
					q.Logger.Error("localmapping: change visibility failed", "mapping", q.Name, "err", err)
				}
			}
			continue
		}
		del = append(del, qtypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r.ReceiptHandle)})
	}
	if len(del) > 0 {
		res, err := q.Client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.QueueURL), Entries: del})
		if err != nil {
			return len(ev.Records), fmt.Errorf("localmapping: delete: %w", err)
		}
		for _, f := range res.Failed {
			q.Logger.Error("localmapping: delete failed; the message will be delivered again", "mapping", q.Name, "code", aws.ToString(f.Code))
		}
	}
	return len(ev.Records), nil
}
