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
//
// A stream mapping with an on-failure destination (Stream.FailureQueueURL)
// retries like the deployed mappings (Terraform: bisect_batch_on_function_error,
// maximum_retry_attempts, destination_config on_failure): a batch whose
// handler reports a failure (or returns an error) is tried again from the
// failed record with half as many records each time, down to that record
// alone (bisection, which costs no retry), and then MaxRetryAttempts more
// times; when those fail too, the mapping sends the failure record Lambda
// sends (Record: the shard and the sequence numbers of the
// records given up, not the records) to the queue and moves on past them.
// `ledger streams failures replay` re-applies them. Without a destination
// a failing record is retried until it succeeds and holds up its shard, as
// before: nothing is ever skipped unrecorded. Positions are not stored: a
// mapping started again reads the stream from its oldest record, so a
// record given up before is tried (and, failing again, reported) again.
package localmapping

import (
	"context"
	"crypto/rand"
	"encoding/json"
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
	"github.com/orderledger/orderledger/internal/resources"
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

	// SQS and FailureQueueURL are the on-failure destination: with both
	// set, a record that keeps failing is given up after MaxRetryAttempts
	// retries and its failure record sent there; without, it is retried
	// until it succeeds.
	SQS             *sqs.Client
	FailureQueueURL string
	// MaxRetryAttempts is how many times a failing record is retried
	// alone after its first try (0: resources.StreamMaxRetryAttempts, as
	// deployed; negative: none), the n-th retry Interval<<n after the last
	// try (at most 2s), so that a passing outage is not taken for a bad
	// record.
	MaxRetryAttempts int
	// FunctionARN names the function in failure records (empty: a
	// function called Name in the stream's region and account).
	FunctionARN string

	last  map[string]string      // shard ID -> last sequence number handled
	retry map[string]*retryState // shard ID -> the failing record's retries
}

// retryState is where a shard's failing record stands.
type retryState struct {
	seq     string    // the first failed record of the last try
	limit   int       // records per try from seq: halved after each failed try
	retries int       // failed tries with seq alone
	invokes int       // tries that included seq
	next    time.Time // no retry before then
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
		s.last, s.retry = map[string]string{}, map[string]*retryState{}
	}
	if s.BatchSize <= 0 || s.BatchSize > 1000 {
		s.BatchSize = 100
	}
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	desc, err := s.Client.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(s.StreamARN)})
	if err != nil {
		return 0, fmt.Errorf("localmapping: describe stream: %w", err)
	}
	total := 0
	for _, sh := range desc.StreamDescription.Shards {
		id := aws.ToString(sh.ShardId)
		if st := s.retry[id]; st != nil && time.Now().Before(st.next) {
			continue // backing off before the next retry
		}
		in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(s.StreamARN), ShardId: sh.ShardId, ShardIteratorType: stypes.ShardIteratorTypeTrimHorizon}
		if last := s.last[id]; last != "" {
			in.ShardIteratorType, in.SequenceNumber = stypes.ShardIteratorTypeAfterSequenceNumber, aws.String(last)
		}
		it, err := s.Client.GetShardIterator(ctx, in)
		if err != nil {
			return total, fmt.Errorf("localmapping: shard iterator %s: %w", id, err)
		}
		limit := s.BatchSize
		if st := s.retry[id]; st != nil {
			limit = st.limit
		}
		out, err := s.Client.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(int32(limit))})
		if err != nil {
			return total, fmt.Errorf("localmapping: get records %s: %w", id, err)
		}
		var batch events.DynamoDBEvent
		for _, r := range out.Records {
			rec := EventRecord(r, s.StreamARN, s.Region)
			if last := s.last[id]; last != "" && !seqLess(last, rec.Change.SequenceNumber) {
				continue // already handled
			}
			batch.Records = append(batch.Records, rec)
		}
		if len(batch.Records) == 0 {
			continue
		}
		batch.Records = batch.Records[:min(len(batch.Records), limit)]
		resp, herr := s.Handler(ctx, batch)
		done := len(batch.Records)
		if herr != nil {
			done = 0 // the whole batch failed, as with a function error
		} else if len(resp.BatchItemFailures) > 0 {
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
		if done == len(batch.Records) {
			delete(s.retry, id)
			continue
		}
		given, err := s.failed(ctx, id, batch.Records[done:], herr)
		total += given
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// failed counts a failed try of recs (the failed record first) on shard
// id: it narrows the next try, and once the retries are spent sends the
// failure record and moves past recs, returning how many it gave up.
func (s *Stream) failed(ctx context.Context, id string, recs []events.DynamoDBEventRecord, herr error) (int, error) {
	seq := recs[0].Change.SequenceNumber
	what := "reported a failure at " + seq
	if herr != nil {
		what = fmt.Sprintf("failed at %s: %v", seq, herr)
	}
	if s.SQS == nil || s.FailureQueueURL == "" {
		return 0, fmt.Errorf("localmapping: %s handler %s; retrying", s.Name, what)
	}
	st := s.retry[id]
	if st == nil || st.seq != seq {
		st = &retryState{seq: seq, limit: len(recs)}
		s.retry[id] = st
	}
	st.invokes++
	if st.limit > 1 {
		st.limit /= 2 // bisect: no retry spent
		return 0, fmt.Errorf("localmapping: %s handler %s; retrying with %d records", s.Name, what, st.limit)
	}
	maxRetries := s.MaxRetryAttempts
	switch {
	case maxRetries == 0:
		maxRetries = resources.StreamMaxRetryAttempts
	case maxRetries < 0:
		maxRetries = 0
	}
	if st.retries < maxRetries {
		st.retries++
		st.next = time.Now().Add(min(s.Interval<<st.retries, 2*time.Second))
		return 0, fmt.Errorf("localmapping: %s handler %s; retry %d of %d", s.Name, what, st.retries, maxRetries)
	}
	rec := s.failureRecord(id, recs, st.invokes, herr != nil)
	body, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("localmapping: %s: failure record: %w", s.Name, err)
	}
	if _, err := s.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.FailureQueueURL), MessageBody: aws.String(string(body))}); err != nil {
		return 0, fmt.Errorf("localmapping: %s handler %s and its failure record could not be sent (retrying): %w", s.Name, what, err)
	}
	s.Logger.Error("localmapping: stream records given up after their retries; failure record sent",
		"mapping", s.Name, "shard_id", id, "start_sequence_number", rec.Batch.StartSequenceNumber,
		"end_sequence_number", rec.Batch.EndSequenceNumber, "invokes", st.invokes, "queue_url", s.FailureQueueURL)
	s.last[id] = recs[len(recs)-1].Change.SequenceNumber
	delete(s.retry, id)
	return len(recs), nil
}

// failureRecord is the record Lambda sends for recs of shard id.
func (s *Stream) failureRecord(id string, recs []events.DynamoDBEventRecord, invokes int, functionError bool) FailureRecord {
	fn := s.FunctionARN
	if fn == "" {
		fn = FunctionARN(s.StreamARN, s.Name)
	}
	rec := FailureRecord{
		RequestContext: RequestContext{
			RequestID: newRequestID(), FunctionARN: fn,
			Condition: ConditionRetriesExhausted, ApproximateInvokeCount: invokes,
		},
		ResponseContext: ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST"},
		Version:         FailureRecordVersion,
		Timestamp:       time.Now().UTC().Truncate(time.Millisecond),
		Batch: BatchInfo{
			ShardID: id, StreamARN: s.StreamARN, BatchSize: len(recs),
			StartSequenceNumber:             recs[0].Change.SequenceNumber,
			EndSequenceNumber:               recs[len(recs)-1].Change.SequenceNumber,
			ApproximateArrivalOfFirstRecord: recs[0].Change.ApproximateCreationDateTime.UTC().Truncate(time.Second),
			ApproximateArrivalOfLastRecord:  recs[len(recs)-1].Change.ApproximateCreationDateTime.UTC().Truncate(time.Second),
		},
	}
	if functionError {
		rec.ResponseContext.FunctionError = "Unhandled"
	}
	return rec
}

// newRequestID returns a random UUID, the shape of Lambda's request IDs.
func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// EventRecord wraps a record read from stream streamARN as a Lambda
// receives it (events.DynamoDBEventRecord, stamped with region).
func EventRecord(r stypes.Record, streamARN, region string) events.DynamoDBEventRecord {
	out := events.DynamoDBEventRecord{
		AWSRegion: region, EventID: aws.ToString(r.EventID), EventName: string(r.EventName),
		EventSource: "aws:dynamodb", EventVersion: aws.ToString(r.EventVersion), EventSourceArn: streamARN,
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
