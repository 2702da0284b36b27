package dynamostore_test

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/dynamostore"
)

func readEvent(t testing.TB, path string) events.DynamoDBEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return ev
}

func TestDecodeStreamRecordOfARecordedBatch(t *testing.T) {
	t.Parallel()
	ev := readEvent(t, "testdata/stream-event.json")
	var got []eventstore.Event
	for i, r := range ev.Records {
		e, ok, err := dynamostore.DecodeStreamRecord(r)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if ok {
			got = append(got, e)
		}
	}
	want := []eventstore.Event{
		{
			EventID: "01KAY9D3J8Q6ZC2W0F7M5T4H1C", StreamID: "01KAY9D3J8Q6ZC2W0F7M5T4H1B", Version: 1,
			Type: "OrderPlaced", SchemaVersion: 1,
			OccurredAt: time.Date(2026, 11, 25, 13, 1, 19, 123456789, time.UTC),
			Data:       json.RawMessage(`{"customer_name":"Test Customer","product_name":"Test Product","quantity":1}`),
			Metadata:   eventstore.Metadata{CorrelationID: "01KAY9D3J8Q6ZC2W0F7M5T4H1B", RequestID: "req-1"},
		},
		{
			EventID: "01KAY9D3J8Q6ZC2W0F7M5T4H1D", StreamID: "01KAY9D3J8Q6ZC2W0F7M5T4H1B", Version: 2,
			Type: "PaymentSucceeded", SchemaVersion: 2,
			OccurredAt: time.Date(2026, 11, 25, 13, 1, 20, 0, time.UTC),
			Data:       json.RawMessage(`{"payment_id":"pay-1","amount":1234}`),
			Metadata:   eventstore.Metadata{CorrelationID: "01KAY9D3J8Q6ZC2W0F7M5T4H1B", CausationID: "01KAY9D3J8Q6ZC2W0F7M5T4H1C"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

func TestDecodeStreamRecordRejectsMalformedEvents(t *testing.T) {
	t.Parallel()
	ev := readEvent(t, "testdata/stream-event-malformed.json")
	for i, r := range ev.Records {
		if e, ok, err := dynamostore.DecodeStreamRecord(r); err == nil {
			t.Fatalf("record %d decoded (%v): %+v", i, ok, e)
		}
	}
}

// toLambda converts a stored item to the shape a Lambda receives.
func toLambda(item map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	out := map[string]events.DynamoDBAttributeValue{}
	for k, v := range item {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			out[k] = events.NewStringAttribute(v.Value)
		case *types.AttributeValueMemberN:
			out[k] = events.NewNumberAttribute(v.Value)
		case *types.AttributeValueMemberB:
			out[k] = events.NewBinaryAttribute(v.Value)
		}
	}
	return out
}

func TestItemRoundTripsThroughAStreamRecord(t *testing.T) {
	t.Parallel()
	e := event(`{"customer_name":"Zoë 李","quantity":3}`)
	e.StreamID, e.Version = "01KAY9D3J8Q6ZC2W0F7M5T4H1B", 7
	e.Metadata = eventstore.Metadata{CorrelationID: "c", CausationID: "d", RequestID: "r"}
	e.PrevHash = eventstore.Hash{0xab, 1}
	e.Hash = eventstore.EventHash(&e, e.PrevHash)
	r := events.DynamoDBEventRecord{EventName: "INSERT", Change: events.DynamoDBStreamRecord{NewImage: toLambda(dynamostore.Item(e))}}
	got, ok, err := dynamostore.DecodeStreamRecord(r)
	if err != nil || !ok {
		t.Fatalf("decode: %v %v", ok, err)
	}
	if !got.OccurredAt.Equal(e.OccurredAt) {
		t.Fatalf("time %v, want %v", got.OccurredAt, e.OccurredAt)
	}
	got.OccurredAt = e.OccurredAt
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip\n%+v\nwant\n%+v", got, e)
	}
	// The key-only image moto emits first for an item created by UpdateItem.
	keyOnly := events.DynamoDBEventRecord{EventName: "INSERT", Change: events.DynamoDBStreamRecord{NewImage: map[string]events.DynamoDBAttributeValue{
		"stream_id": events.NewStringAttribute("s"), "version": events.NewNumberAttribute("1"),
	}}}
	if _, ok, err := dynamostore.DecodeStreamRecord(keyOnly); ok || err != nil {
		t.Fatalf("key-only image: ok=%v err=%v, want skipped", ok, err)
	}
}

// FuzzDecodeStreamRecord feeds arbitrary records to the decoder: it must
// never panic (the Lambda types' accessors panic on a type mismatch), and
// whatever it accepts must survive a store round trip unchanged.
func FuzzDecodeStreamRecord(f *testing.F) {
	for _, path := range []string{"testdata/stream-event.json", "testdata/stream-event-malformed.json"} {
		for _, r := range readEvent(f, path).Records {
			b, err := json.Marshal(r)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r events.DynamoDBEventRecord
		if json.Unmarshal(data, &r) != nil {
			return
		}
		e, ok, err := dynamostore.DecodeStreamRecord(r)
		if err != nil || !ok {
			return
		}
		if e.StreamID == "" || e.Version < 1 || e.EventID == "" || e.Type == "" || e.SchemaVersion < 1 || !json.Valid(e.Data) {
			t.Fatalf("accepted an invalid event: %+v", e)
		}
		again, ok, err := dynamostore.DecodeStreamRecord(events.DynamoDBEventRecord{EventName: "INSERT", Change: events.DynamoDBStreamRecord{NewImage: toLambda(dynamostore.Item(e))}})
		if err != nil || !ok {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		if !again.OccurredAt.Equal(e.OccurredAt) || again.EventID != e.EventID || string(again.Data) != string(e.Data) || again.Version != e.Version {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", e, again)
		}
	})
}
