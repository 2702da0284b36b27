package localmapping

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// FailureRecord is the failure record ("invocation record") AWS Lambda
// sends to a DynamoDB stream event source mapping's on-failure destination
// when a batch exhausts its retries or its records grow too old: metadata
// about the batch, not its records (AWS Lambda Developer Guide, "Retaining
// discarded records for a DynamoDB event source in Lambda"). aws-lambda-go
// has no type for it; the JSON names are the guide's. The local stream
// mappings send the same record, and `ledger streams failures` (package
// aws/streamfailures) reads both.
type FailureRecord struct {
	RequestContext  RequestContext  `json:"requestContext"`
	ResponseContext ResponseContext `json:"responseContext"`
	// Version is the record format's version, "1.0".
	Version string `json:"version"`
	// Timestamp is when the record was sent.
	Timestamp time.Time `json:"timestamp"`
	// Batch locates the failed records in the stream.
	Batch BatchInfo `json:"DDBStreamBatchInfo"`
}

// RequestContext says which function failed, and why the batch was given up.
type RequestContext struct {
	RequestID   string `json:"requestId"`
	FunctionARN string `json:"functionArn"`
	// Condition is RetryAttemptsExhausted, RecordAgeExceeded or
	// MaximumPayloadSizeExceeded.
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// ResponseContext is the last invocation's outcome.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	// FunctionError is "Unhandled" when the function returned an error,
	// empty when it reported the records as failed (partial batch response).
	FunctionError string `json:"functionError,omitempty"`
}

// BatchInfo locates the batch in the stream: the records of ShardID from
// StartSequenceNumber to EndSequenceNumber, both included.
type BatchInfo struct {
	ShardID                         string    `json:"shardId"`
	StartSequenceNumber             string    `json:"startSequenceNumber"`
	EndSequenceNumber               string    `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord time.Time `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  time.Time `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int       `json:"batchSize"`
	StreamARN                       string    `json:"streamArn"`
}

// Conditions of RequestContext.
const (
	ConditionRetriesExhausted = "RetryAttemptsExhausted"
	ConditionRecordAge        = "RecordAgeExceeded"
)

// FailureRecordVersion is the FailureRecord format version Lambda sends.
const FailureRecordVersion = "1.0"

// DecodeFailureRecord parses a failure record and checks that it locates a batch.
func DecodeFailureRecord(body []byte) (FailureRecord, error) {
	var r FailureRecord
	if err := json.Unmarshal(body, &r); err != nil {
		return FailureRecord{}, fmt.Errorf("localmapping: not a stream failure record: %w", err)
	}
	b := r.Batch
	if b.ShardID == "" || b.StartSequenceNumber == "" || b.EndSequenceNumber == "" || b.StreamARN == "" {
		return FailureRecord{}, fmt.Errorf("localmapping: not a stream failure record: DDBStreamBatchInfo lacks its shard, sequence numbers or stream")
	}
	if seqLess(b.EndSequenceNumber, b.StartSequenceNumber) {
		return FailureRecord{}, fmt.Errorf("localmapping: failure record: sequence %s ends before it starts (%s)", b.EndSequenceNumber, b.StartSequenceNumber)
	}
	return r, nil
}

// FunctionName returns the last part of the failed function's ARN
// ("dev-order-projector"), or "" when there is none.
func (r FailureRecord) FunctionName() string {
	arn := r.RequestContext.FunctionARN
	if arn == "" {
		return ""
	}
	p := strings.Split(arn, ":")
	// arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
	if len(p) >= 7 && p[5] == "function" {
		return p[6]
	}
	return p[len(p)-1]
}

// FunctionARN returns the ARN of Lambda function name in the partition,
// region and account of anyARN (a stream's, a queue's).
func FunctionARN(anyARN, name string) string {
	p := strings.SplitN(anyARN, ":", 6)
	if len(p) < 6 {
		return "arn:aws:lambda:::function:" + name
	}
	return strings.Join([]string{"arn", p[1], "lambda", p[3], p[4], "function", name}, ":")
}
