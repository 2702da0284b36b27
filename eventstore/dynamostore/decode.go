package dynamostore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderledger/orderledger/eventstore"
)

// attrs reads typed attributes of one item, whatever its representation.
type attrs struct {
	s func(name string) (string, bool) // a string attribute
	n func(name string) (string, bool) // a number attribute, as its text
	b func(name string) ([]byte, bool) // a binary attribute
}

// DecodeItem returns the event stored in item. ok is false for items that
// are not events (idempotency records).
func DecodeItem(item map[string]types.AttributeValue) (e eventstore.Event, ok bool, err error) {
	return decode(attrs{
		s: func(k string) (string, bool) {
			v, ok := item[k].(*types.AttributeValueMemberS)
			if !ok {
				return "", false
			}
			return v.Value, true
		},
		n: func(k string) (string, bool) {
			v, ok := item[k].(*types.AttributeValueMemberN)
			if !ok {
				return "", false
			}
			return v.Value, true
		},
		b: func(k string) ([]byte, bool) {
			v, ok := item[k].(*types.AttributeValueMemberB)
			if !ok {
				return nil, false
			}
			return v.Value, true
		},
	})
}

// DecodeStreamRecord returns the event a DynamoDB stream record of the
// events table carries (its NEW_IMAGE), as a Lambda receives it. ok is false
// for records that carry no event: removals (expired idempotency records),
// idempotency records, and key-only records. A record that looks like an
// event but cannot be decoded is an error.
func DecodeStreamRecord(r events.DynamoDBEventRecord) (e eventstore.Event, ok bool, err error) {
	if r.EventName == string(events.DynamoDBOperationTypeRemove) {
		return eventstore.Event{}, false, nil
	}
	img := r.Change.NewImage
	if len(img) == 0 {
		return eventstore.Event{}, false, nil
	}
	get := func(k string, t events.DynamoDBDataType) (string, bool) {
		v, ok := img[k]
		if !ok || v.DataType() != t {
			return "", false
		}
		if t == events.DataTypeNumber {
			return v.Number(), true
		}
		return v.String(), true
	}
	// A key-only image (moto emits one before the full image of an item
	// created by UpdateItem) is no event and no error.
	if _, has := img[attrEventID]; !has && len(img) <= 2 {
		return eventstore.Event{}, false, nil
	}
	return decode(attrs{
		s: func(k string) (string, bool) { return get(k, events.DataTypeString) },
		n: func(k string) (string, bool) { return get(k, events.DataTypeNumber) },
		b: func(k string) ([]byte, bool) {
			v, ok := img[k]
			if !ok || v.DataType() != events.DataTypeBinary {
				return nil, false
			}
			return v.Binary(), true
		},
	})
}

func decode(a attrs) (eventstore.Event, bool, error) {
	var e eventstore.Event
	stream, ok := a.s(attrStream)
	if !ok || stream == "" {
		return e, false, fmt.Errorf("eventstore/dynamostore: decode: no %s", attrStream)
	}
	vtext, ok := a.n(attrVersion)
	if !ok {
		return e, false, fmt.Errorf("eventstore/dynamostore: decode %s: no %s", stream, attrVersion)
	}
	version, err := strconv.ParseInt(vtext, 10, 64)
	if err != nil {
		return e, false, fmt.Errorf("eventstore/dynamostore: decode %s: version %q: %w", stream, vtext, err)
	}
	if version == 0 {
		return e, false, nil // an idempotency record
	}
	if version < 0 {
		return e, false, fmt.Errorf("eventstore/dynamostore: decode %s: negative version %d", stream, version)
	}
	e.StreamID, e.Version = stream, version
	var missing string
	req := func(name string) string {
		v, ok := a.s(name)
		if (!ok || v == "") && missing == "" {
			missing = name
		}
		return v
	}
	e.EventID = req(attrEventID)
	e.Type = req(attrType)
	at := req(attrOccurredAt)
	data := req(attrData)
	if missing != "" {
		return e, false, fmt.Errorf("eventstore/dynamostore: decode %s v%d: no %s", stream, version, missing)
	}
	sv, ok := a.n(attrSchemaVersion)
	if !ok {
		return e, false, fmt.Errorf("eventstore/dynamostore: decode %s v%d: no %s", stream, version, attrSchemaVersion)
	}
	schema, err := strconv.Atoi(sv)
	if err != nil || schema < 1 {
		return e, false, fmt.Errorf("eventstore/dynamostore: decode %s v%d: schema version %q", stream, version, sv)
	}
	e.SchemaVersion = schema
	if e.OccurredAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
		return e, false, fmt.Errorf("eventstore/dynamostore: decode %s v%d: occurred_at: %w", stream, version, err)
	}
	if !json.Valid([]byte(data)) {
		return e, false, fmt.Errorf("eventstore/dynamostore: decode %s v%d: data is not JSON", stream, version)
	}
	e.Data = json.RawMessage(data)
	e.Metadata.CorrelationID, _ = a.s(attrCorrelationID)
	e.Metadata.CausationID, _ = a.s(attrCausationID)
	e.Metadata.RequestID, _ = a.s(attrRequestID)
	e.Metadata.TraceParent, _ = a.s(attrTraceParent)
	for _, h := range []struct {
		name string
		to   *eventstore.Hash
	}{{attrHash, &e.Hash}, {attrPrevHash, &e.PrevHash}} {
		if v, ok := a.b(h.name); ok {
			if len(v) != eventstore.HashSize {
				return e, false, fmt.Errorf("eventstore/dynamostore: decode %s v%d: %s of %d bytes", stream, version, h.name, len(v))
			}
			*h.to = eventstore.Hash(v)
		}
	}
	return e, true, nil
}
