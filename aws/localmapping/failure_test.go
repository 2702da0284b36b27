package localmapping_test

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/orderledger/orderledger/aws/localmapping"
)

// TestDecodeFailureRecord decodes a failure record in the shape AWS
// Lambda's guide shows (testdata/stream-failure-record.json), and checks
// that what the local mappings send encodes to the same JSON names.
func TestDecodeFailureRecord(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("testdata/stream-failure-record.json")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := localmapping.DecodeFailureRecord(body)
	if err != nil {
		t.Fatal(err)
	}
	want := localmapping.FailureRecord{
		RequestContext: localmapping.RequestContext{RequestID: "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
			FunctionARN: "arn:aws:lambda:us-east-2:123456789012:function:dev-order-projector",
			Condition:   localmapping.ConditionRetriesExhausted, ApproximateInvokeCount: 1},
		ResponseContext: localmapping.ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: "Unhandled"},
		Version:         localmapping.FailureRecordVersion,
		Timestamp:       time.Date(2019, 11, 14, 0, 13, 49, 717e6, time.UTC),
		Batch: localmapping.BatchInfo{ShardID: "shardId-00000001573689847184-864758bb",
			StartSequenceNumber: "800000000003126276362", EndSequenceNumber: "800000000003126276362",
			ApproximateArrivalOfFirstRecord: time.Date(2019, 11, 14, 0, 13, 19, 0, time.UTC),
			ApproximateArrivalOfLastRecord:  time.Date(2019, 11, 14, 0, 13, 19, 0, time.UTC),
			BatchSize:                       1, StreamARN: "arn:aws:dynamodb:us-east-2:123456789012:table/dev-order-event-log/stream/2019-11-14T00:04:06.388"},
	}
	if !reflect.DeepEqual(rec, want) {
		t.Fatalf("decoded %+v\nwant    %+v", rec, want)
	}
	if got := rec.FunctionName(); got != "dev-order-projector" {
		t.Fatalf("FunctionName = %q", got)
	}
	if got := localmapping.FunctionARN(rec.Batch.StreamARN, "dev-order-projector"); got != rec.RequestContext.FunctionARN {
		t.Fatalf("FunctionARN = %q, want %q", got, rec.RequestContext.FunctionARN)
	}
	// Encoded again, it has the same JSON document.
	again, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("re-encoded as %s\nwant the same document as %s", again, body)
	}

	for _, bad := range []string{
		`not json`,
		`{"DDBStreamBatchInfo": {"shardId": "s", "startSequenceNumber": "1", "streamArn": "arn"}}`,
		`{"DDBStreamBatchInfo": {"shardId": "s", "startSequenceNumber": "20", "endSequenceNumber": "3", "streamArn": "arn"}}`,
	} {
		if _, err := localmapping.DecodeFailureRecord([]byte(bad)); err == nil {
			t.Errorf("DecodeFailureRecord(%s) accepted it", bad)
		}
	}
}
