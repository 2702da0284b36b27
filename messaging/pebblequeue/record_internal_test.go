package pebblequeue

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// TestRecordRoundTrip: every field survives the binary form, which does not
// alias its input; truncated and unknown forms are refused.
func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	recs := []*record{
		{ID: "01M8", Body: []byte{}, VisibleAt: -1, SentAt: 0},
		{ID: "01M9XFH4DHXNQ87J30T28FA8HD", Body: []byte(`{"order_id":"x","data":{"q":1}}`),
			Attributes:   map[string]string{"event_type": "OrderPlaced", "order_id": "x", "": "empty key"},
			ReceiveCount: 3, VisibleAt: time.Date(2026, 12, 3, 0, 0, 0, 1, time.UTC).UnixNano(), SentAt: 1 << 62,
			DeadLetteredFrom: "order-processing", DeadReceiveCount: 3, Returned: true, Forgiven: true},
	}
	for _, rec := range recs {
		b := encodeRecord(nil, rec)
		got, err := decodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Fatalf("round trip: got %+v, want %+v", got, rec)
		}
		for i := range b {
			b[i] = 0xff // the decoded record owns its memory
		}
		if !reflect.DeepEqual(got, rec) {
			t.Fatalf("the decoded record aliases its input: %+v", got)
		}
		enc := encodeRecord(nil, rec)
		for n := range len(enc) {
			if _, err := decodeRecord(enc[:n]); err == nil {
				t.Fatalf("a record cut to %d of %d bytes decoded", n, len(enc))
			}
		}
		if _, err := decodeRecord(append(enc, 0)); err == nil {
			t.Fatal("a record with a trailing byte decoded")
		}
	}
	if _, err := decodeRecord([]byte{0x02, 0}); err == nil {
		t.Fatal("an unknown version decoded")
	}
}

// TestJSONRecordsOfEarlierVersionsAreRead: a queue written before the
// binary form (records as JSON) is received, peeked and deleted as before.
func TestJSONRecordsOfEarlierVersionsAreRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Now()
	old := record{ID: "01M8OLD", Body: []byte(`{"a":1}`), Attributes: map[string]string{"event_type": "OrderPlaced"},
		ReceiveCount: 1, Returned: true, VisibleAt: now.Add(-time.Second).UnixNano(), SentAt: now.Add(-time.Minute).UnixNano()}
	data, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	_ = b.Set(msgKey("q", old.ID), data, nil)
	_ = b.Set(visKey("q", old.VisibleAt, old.ID), nil, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	br, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	q, err := br.Queue("q", QueueConfig{})
	if err != nil {
		t.Fatal(err)
	}
	peek, err := q.Peek(ctx, 0)
	if err != nil || len(peek) != 1 || string(peek[0].Body) != `{"a":1}` || peek[0].ReceiveCount != 1 {
		t.Fatalf("peek of a JSON record: %+v, %v", peek, err)
	}
	msgs, err := q.Receive(ctx, 1, 0)
	if err != nil || len(msgs) != 1 || msgs[0].ID != old.ID || string(msgs[0].Body) != `{"a":1}` ||
		msgs[0].ReceiveCount != 2 || msgs[0].Attributes["event_type"] != "OrderPlaced" {
		t.Fatalf("receive of a JSON record: %+v, %v", msgs, err)
	}
	// The receive rewrote it in the binary form.
	val, closer, err := br.db.Get(msgKey("q", old.ID))
	if err != nil {
		t.Fatal(err)
	}
	if val[0] != recordV1 {
		t.Fatalf("the record was rewritten as %q, not in the binary form", val[:1])
	}
	closer.Close()
	if err := q.Delete(ctx, msgs[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if left, err := q.Peek(ctx, 0); err != nil || len(left) != 0 {
		t.Fatalf("after delete: %+v, %v", left, err)
	}
}
