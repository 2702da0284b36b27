package pebblestore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// TestRecordFormats: a record of every format decodes to what was encoded,
// formats 1 and 2 without the traceparent they cannot hold, format 3 (what
// the store writes) with it.
func TestRecordFormats(t *testing.T) {
	e := eventstore.Event{
		EventID: "ev", Type: "Tested", SchemaVersion: 2,
		OccurredAt: time.Date(2026, 12, 3, 9, 0, 0, 123456789, time.UTC),
		Data:       json.RawMessage(`{"n":1}`),
		Metadata: eventstore.Metadata{CorrelationID: "corr", CausationID: "cause", RequestID: "req",
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	}
	prev, h := eventstore.Hash{1}, eventstore.Hash{2}
	for _, format := range []byte{recordFormat1, recordFormat2, recordFormat3} {
		head := record2Head
		if format == recordFormat1 {
			head = recordHead
		}
		rec := append([]byte{format}, make([]byte, head-1)...)
		rec = encodeRecordTail(rec, format, "s", &e)
		setRecordPosition(rec, 7, 3)
		if format != recordFormat1 {
			setRecordHashes(rec, prev, h)
		}
		if format == recordFormat3 {
			if want := encodeRecord(nil, "s", &e); len(want) != len(rec) {
				t.Fatalf("encodeRecord writes %d bytes, format 3 by hand %d", len(want), len(rec))
			}
		}
		var r records
		r.add(rec)
		got, err := r.decode(nil)
		if err != nil {
			t.Fatalf("format %d: %v", format, err)
		}
		want := e
		want.StreamID, want.Version, want.Position = "s", 3, 7
		switch format {
		case recordFormat1:
			want.Metadata.TraceParent = ""
		case recordFormat2:
			want.Metadata.TraceParent = ""
			want.PrevHash, want.Hash = prev, h
		default:
			want.PrevHash, want.Hash = prev, h
		}
		g := got[0]
		if g.Metadata != want.Metadata || g.StreamID != want.StreamID || g.Version != want.Version ||
			g.Position != want.Position || g.Hash != want.Hash || g.PrevHash != want.PrevHash ||
			!g.OccurredAt.Equal(want.OccurredAt) || string(g.Data) != string(want.Data) || g.SchemaVersion != 2 {
			t.Fatalf("format %d: decoded %+v, want %+v", format, g, want)
		}
		if gh, _ := recordHash(rec); gh != want.Hash {
			t.Fatalf("format %d: recordHash %s, want %s", format, gh, want.Hash)
		}
	}
}
